"""Encoder and muxer options reach FFmpeg, which judges them: bad values and options that do not
apply are one-line errors; a container that cannot hold a copied stream says which."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from tests.streamer.clips import write_clip
from tests.streamer.commands import run


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "error:" in line]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "in.mp4"
    write_clip(path, frames=12)
    return path


def test_encoder_options_are_applied(clip: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    assert run(clip, "-o", dst, "--encoder-opt", "g=4", "--encoder-opt", "bf=0") == 0
    with av.open(str(dst)) as out:
        keyframes = [p.pts for p in out.demux(video=0) if p.is_keyframe and p.size]
    assert len(keyframes) == 3  # 12 frames, a keyframe every 4


@pytest.mark.parametrize(("flags", "message"), [
    (["--encoder-opt", "nosuch=1"], "encoder libx264 has no option 'nosuch'"),
    (["--encoder-opt", "preset=warp9"], "encoder libx264 refused the options"),
    (["--codec", "libvpx-vp9", "--preset", "fast"], "encoder libvpx-vp9 has no option 'preset'"),
    (["--encoder-opt", "novalue"], "--encoder-opt takes KEY=VALUE"),
    (["--muxer-opt", "nosuch=1"], "the mp4 muxer has no option 'nosuch'"),
])
def test_options_that_do_not_apply_are_refused(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
    message: str,
) -> None:
    dst = tmp_path / "out.mp4"
    assert run(clip, "-o", dst, *flags) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and message in lines[0], lines
    assert not dst.exists()


def test_muxer_options_replace_the_defaults(clip: Path, tmp_path: Path) -> None:
    """The user's movflags win over the fragmented default: a faststart MP4 (index first)."""
    dst = tmp_path / "out.mp4"
    assert run(clip, "-o", dst, "--muxer-opt", "movflags=+faststart") == 0
    data = dst.read_bytes()
    assert b"moof" not in data and data.index(b"moov") < data.index(b"mdat")
    with av.open(str(dst)) as out:
        assert sum(1 for _ in out.decode(video=0)) == 12


def test_aac_into_webm_names_the_stream(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = tmp_path / "out.webm"
    assert run(clip, "-o", dst) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "cannot hold the input's audio aac (stream #1)" in lines[0]
    assert ".mkv" in lines[0] and not dst.exists()
    silent = tmp_path / "silent.mp4"
    write_clip(silent, frames=4, audio=False)
    assert run(silent, "-o", dst) == 0  # VP9 chosen for WebM
    with av.open(str(dst)) as out:
        assert out.streams.video[0].codec_context.name == "vp9"
