"""A segment worker killed for real (issue 24, item 4): a job of ``--workers 2`` (and of Ray
local) whose worker process is SIGKILLed mid-segment, found through the process tree as a user
or the OOM killer would. The segment is retried once on a new worker, in one log line; a
second death ends the job in one line (exit 2) with the finished segments kept, and
``--resume`` then gives the uninterrupted run's frames bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path

import av
import numpy as np
import pytest

from streamer.jobs.job import job_folder
from tests.streamer.clips import write_clip

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")]


def _command(src: Path, dst: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "streamer.cli", "run", str(src), "-o", str(dst),
            "--model", "dcp", "--quiet", "--segment-seconds", "1", "--workers", "2", *flags]


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray() for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """6 one-second segments, and the frames of their uninterrupted 2-worker run."""
    folder = tmp_path_factory.mktemp("clip")
    src, whole = folder / "in.mp4", folder / "whole.mp4"
    write_clip(src, frames=144, fps=24, size=(144, 256), options={"g": "24"})
    subprocess.run(_command(src, whole), check=True, capture_output=True)
    return src, _frames(whole)


def _descendants(pid: int) -> dict[int, str]:
    """Every process under ``pid``, with its command line."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: dict[int, str] = {}
    for child, parent in parents.items():
        up = parent
        while up not in (0, 1, pid) and up in parents:
            up = parents[up]
        if up == pid:
            try:
                command = (Path("/proc") / str(child) / "cmdline").read_bytes()
            except OSError:
                continue
            found[child] = command.replace(b"\0", b" ").decode(errors="replace")
    return found


def _workers(job: subprocess.Popen[str], marker: str, exclude: Collection[int] = ()
             ) -> set[int]:
    """The job's worker processes (their command lines hold ``marker``), waited for."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = {p for p, command in _descendants(job.pid).items()
                 if marker in command and p not in exclude}
        if found:
            return found
        assert job.poll() is None, "the job ended before its workers were found"
        time.sleep(0.05)
    raise AssertionError(f"no worker process ({marker}) under the job")


def _after_a_finished_segment(dst: Path, job: subprocess.Popen[str]) -> None:
    manifest = job_folder(dst) / "manifest.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if manifest.is_file() and json.loads(manifest.read_text())["finished"]:
            return
        assert job.poll() is None, "the job ended before a segment finished"
        time.sleep(0.05)
    raise AssertionError("no segment finished")


def _retry_line(err: str, pid: int) -> int:
    """The one line saying the killed worker's segment is retried; its segment's index."""
    said = [line for line in err.splitlines() if "retrying the segment once" in line]
    assert len(said) == 1 and f"{pid}" in said[0] and "Traceback" not in err, err
    return int(said[0].split("segment ")[1].split(":")[0])


def test_a_killed_worker_s_segment_is_retried_once_on_a_new_worker(
    tmp_path: Path, clip: tuple[Path, list[np.ndarray]]
) -> None:
    src, whole = clip
    dst = tmp_path / "out.mp4"
    job = subprocess.Popen(_command(src, dst), stderr=subprocess.PIPE, text=True)
    _after_a_finished_segment(dst, job)
    victim = min(_workers(job, "spawn_main"))
    os.kill(victim, signal.SIGKILL)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    index = _retry_line(err, victim)
    assert "killed by SIGKILL" in err and f"segment {index} done" in err
    assert not job_folder(dst).exists()
    for x, y in zip(whole, _frames(dst), strict=True):
        assert np.array_equal(x, y)


def test_a_segment_whose_worker_dies_twice_ends_the_job_in_one_line_then_resume(
    tmp_path: Path, clip: tuple[Path, list[np.ndarray]]
) -> None:
    src, whole = clip
    dst = tmp_path / "out.mp4"
    job = subprocess.Popen(_command(src, dst), stderr=subprocess.PIPE, text=True)
    _after_a_finished_segment(dst, job)
    first = _workers(job, "spawn_main")
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    assert job.stderr is not None
    said: list[str] = []
    while not said or "retrying the segment once" not in said[-1]:
        said.append(job.stderr.readline())
        assert said[-1], "the job ended without retrying the segment"
    index = _retry_line("".join(said), victim)
    os.kill(min(_workers(job, "spawn_main", exclude=first)), signal.SIGKILL)  # the new one
    _, rest = job.communicate(timeout=120)
    err = "".join(said) + rest
    assert job.returncode == 2, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"segment {index}: its worker process died again (killed by SIGKILL" in lines[0]
    assert "the finished segments are kept" in lines[0] and "--resume" in lines[0]
    folder = job_folder(dst)
    finished = json.loads((folder / "manifest.json").read_text())["finished"]
    assert finished and all((folder / f["file"]).is_file() for f in finished.values())
    assert not list(folder.glob("*.part*")) and not dst.exists()
    again = subprocess.run(_command(src, dst, "--resume"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"resuming: {len(finished)} segments already done" in again.stderr
    for x, y in zip(whole, _frames(dst), strict=True):
        assert np.array_equal(x, y)


def test_a_killed_ray_worker_s_segment_is_retried_once(
    tmp_path: Path, clip: tuple[Path, list[np.ndarray]]
) -> None:
    pytest.importorskip("ray")
    src, whole = clip
    dst = tmp_path / "out.mp4"
    job = subprocess.Popen(_command(src, dst, "--ray", "local"), stderr=subprocess.PIPE,
                           text=True)
    _after_a_finished_segment(dst, job)
    victim = min(_workers(job, "ray::_SegmentWorker"))  # this job's actors only
    os.kill(victim, signal.SIGKILL)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    said = [line for line in err.splitlines() if "retrying the segment once" in line]
    assert len(said) == 1 and f"pid {victim}" in said[0], err
    assert "Traceback" not in err and not job_folder(dst).exists()
    for x, y in zip(whole, _frames(dst), strict=True):
        assert np.array_equal(x, y)
