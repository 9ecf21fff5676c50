"""``--progress`` as ffmpeg's ``-progress``: blocks of key=value lines a script can follow,
each closed by ``progress=continue`` and the last by ``progress=end``, the total honouring
``--max-frames``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.streamer.clips import write_clip
from tests.streamer.commands import run


def blocks(path: Path) -> list[dict[str, str]]:
    found, block = [], {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        block[key] = value
        if key == "progress":
            found.append(block)
            block = {}
    assert not block, "a block without its progress= line"
    return found


def test_progress_blocks_end_with_the_frames_written(tmp_path: Path) -> None:
    src, progress = tmp_path / "in.mp4", tmp_path / "progress.txt"
    write_clip(src, frames=30, fps=25, audio=False)
    assert run(src, "-o", tmp_path / "out.mkv", "--max-frames", "12",
               "--progress", progress) == 0
    written = blocks(progress)
    assert [b["progress"] for b in written] == ["continue"] * (len(written) - 1) + ["end"]
    last = written[-1]
    assert last["frame"] == "12" and last["total_frames"] == "12"
    assert last["out_time_us"] == last["out_time_ms"] == "440000"  # frame 11 at 25 fps
    assert last["out_time"] == "00:00:00.440000"
    assert float(last["fps"]) > 0 and last["speed"].endswith("x")


def test_a_batch_adds_each_file_s_blocks(tmp_path: Path) -> None:
    a, b, progress = tmp_path / "a.mp4", tmp_path / "b.mkv", tmp_path / "progress.txt"
    write_clip(a, frames=5, audio=False)
    write_clip(b, frames=7, audio=False)
    progress.write_text("from a run before\n")  # emptied when the run starts
    assert run(a, b, "-o", f"{tmp_path / 'out'}/", "--progress", progress) == 0
    ends = [block["frame"] for block in blocks(progress) if block["progress"] == "end"]
    assert ends == ["5", "7"]


def test_progress_cannot_share_the_stream_s_pipe_nor_go_with_segments(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("lavfi:testsrc2=d=1", "-o", "-", "-f", "nut", "--progress", "pipe:1") == 2
    assert "--progress pipe:1 is the output's own pipe" in capsys.readouterr().err
    assert run("lavfi:testsrc2=d=1", "-o", tmp_path / "x.mp4", "--segment-seconds", "1",
               "--progress", tmp_path / "p.txt") == 2
    assert "--progress cannot be used with segments" in capsys.readouterr().err
