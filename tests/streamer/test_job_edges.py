"""The remaining edges of a segmented job (issue 20, 8): ``--workers 0`` and ``--segment-seconds
0`` alone are refused (they had been a plain run, silently), and a worker process killed
mid-segment is one line, not a traceback."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from streamer.jobs import workers
from streamer.jobs.job import job_folder
from streamer.jobs.segments import Segment, SegmentResult
from tests.streamer.clips import write_clip
from tests.streamer.commands import run


@pytest.mark.parametrize(("flags", "says"), [
    (["--workers", "0"], "--workers must be >= 1, got 0"),
    (["--workers", "-2"], "--workers must be >= 1, got -2"),
    (["--segment-seconds", "0"], "--segment-seconds must be > 0, got 0"),
    (["--segment-seconds", "-1"], "--segment-seconds must be > 0, got -1"),
])
def test_zero_workers_or_seconds_alone_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=4, audio=False)
    assert run(src, "-o", dst, *flags) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and says in err[0], err
    assert not dst.exists()


def killed(input: str, segment: Segment, folder: Path) -> SegmentResult:
    """A worker's task that dies as an OOM kill does (in the worker process)."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("not reached")


@pytest.mark.slow
def test_a_worker_killed_mid_segment_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "_enhance", killed)  # pickled by name: the workers run it
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=24, audio=False, options={"g": "6"})
    assert run(src, "-o", dst, "--segment-seconds", "0.25", "--workers", "2") == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "a worker process died during a segment" in lines[0], err
    assert "--resume" in lines[0] and "Traceback" not in err
    assert not dst.exists() and job_folder(dst).is_dir()
