"""Ctrl-C or SIGTERM, then another, on a segmented job of 2 worker processes, as a user's
shell sends them: the job stops at once (the segments in progress given up, their ``.part``
files removed, the finished ones kept), one line says how to continue, the exit code is the
shells' 130/143 (never the process killed by the second signal in its teardown), and
``--resume`` then gives every frame."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamer.jobs.job import job_folder
from tests.streamer.clips import decoded_pts, write_clip

STOPPED = "the same command with --resume continues"


def _command(src: Path, dst: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "streamer.cli", "run", str(src), "-o", str(dst),
            "--model", "dcp", "--quiet", "--segment-seconds", "1", *flags]


@pytest.mark.slow  # 2 jobs of real worker processes and a resume: 10 s each
@pytest.mark.parametrize(("first", "second"), [(signal.SIGINT, signal.SIGINT),
                                               (signal.SIGTERM, signal.SIGTERM)])
def test_a_second_signal_as_a_segmented_job_stops_keeps_its_exit_code(
        tmp_path: Path, first: int, second: int) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=144, fps=24, size=(144, 256), options={"g": "24"})
    job = subprocess.Popen(_command(src, dst, "--workers", "2"), stderr=subprocess.PIPE,
                           text=True)
    assert job.stderr is not None
    try:
        manifest = job_folder(dst) / "manifest.json"
        deadline = time.monotonic() + 90
        while not (manifest.is_file() and json.loads(manifest.read_text())["finished"]):
            assert time.monotonic() < deadline and job.poll() is None, "no segment finished"
            time.sleep(0.02)
        job.send_signal(first)
        seen = ""
        while STOPPED not in seen and job.poll() is None:
            seen += job.stderr.readline()
        time.sleep(0.15)  # past the line: into the interpreter's teardown (half a second)
        job.send_signal(second)
        _, rest = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    err = seen + rest
    assert job.returncode == 128 + first, err
    assert "Traceback" not in err and err.count(STOPPED) == 1, err
    folder = job_folder(dst)
    finished = json.loads(manifest.read_text())["finished"]
    assert not list(folder.glob("*.part*")) and not dst.exists()
    assert sorted(p.name for p in folder.glob("segment*")) == sorted(
        entry["file"] for entry in finished.values())
    again = subprocess.run(_command(src, dst, "--resume"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert decoded_pts(dst) == decoded_pts(src)
