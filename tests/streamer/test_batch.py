"""Several inputs and folders into an output folder: names and subfolders kept, one failure
reported in the table while the rest are done, existing outputs refused without -y."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.streamer.clips import decoded_pts, write_clip
from tests.streamer.commands import run


def test_two_inputs_into_a_folder_keep_their_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.mp4", tmp_path / "b.mkv"
    write_clip(a, frames=6)
    write_clip(b, frames=4, audio=False)
    out = tmp_path / "out"
    assert run(a, b, "-o", f"{out}/") == 0
    assert decoded_pts(out / "a.mp4") == decoded_pts(a)
    assert decoded_pts(out / "b.mkv") == decoded_pts(b)
    err = capsys.readouterr().err
    assert "2 of 2 files enhanced, 0 failed" in err and f"ok -> {out / 'a.mp4'}" in err
    # again without -y: refused before any work, naming what exists
    assert run(a, b, "-o", f"{out}/") == 2
    assert "a.mp4 and 1 more exist; pass -y" in capsys.readouterr().err
    assert run(a, b, "-o", out, "-y") == 0  # an existing folder needs no slash


def test_a_folder_is_mirrored_and_a_bad_file_does_not_stop_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "shoot"
    (src / "day2").mkdir(parents=True)
    write_clip(src / "one.mp4", frames=4)
    write_clip(src / "day2" / "two.mov", frames=4)
    (src / "broken.mp4").write_bytes(b"not a video")
    (src / "notes.txt").write_text("not a video either")
    out = tmp_path / "enhanced"
    assert run(src, "-o", f"{out}/") == 2  # one failed
    assert len(decoded_pts(out / "one.mp4")) == 4
    assert len(decoded_pts(out / "day2" / "two.mov")) == 4
    assert not (out / "broken.mp4").exists() and not (out / "notes.txt").exists()
    err = capsys.readouterr().err
    assert "2 of 3 files enhanced, 1 failed" in err
    assert "broken.mp4" in err and "error: cannot open" in err


def test_several_inputs_need_an_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = tmp_path / "a.mp4"
    write_clip(a, frames=2, audio=False)
    assert run(a, a, "-o", tmp_path / "x.mp4") == 2
    assert "need an output folder: -o DIR/" in capsys.readouterr().err
    assert run(a, a, "-o", f"{tmp_path}/o/") == 2
    assert "would both be written to" in capsys.readouterr().err
