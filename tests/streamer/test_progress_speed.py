"""Progress says how fast and how long: the log line (stderr not a terminal) and the terminal's
bar give the speed against real time, as ffmpeg's ``speed=``, and the time left where the
total is known; the total is the input's frames or ``--max-frames``."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streamer.cli import main
from streamer.frames import ColorTags, Frame, Layout
from streamer.sinks.progress import Pace, clock
from tests.streamer.clips import write_clip
from tests.streamer.signalled import ROOT

LINE = re.compile(r"in\.\w+: (\d+)/12 frames, [\d.]+ fps, speed ([\d.]+)x, ETA (\d+:\d\d:\d\d)$")


def frame(pts: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), Layout.RGB24, pts=pts,
                 time_base=Fraction(1, 25), seq=pts, capture_time=0.0, tags=ColorTags())


def test_pace_counts_media_time_from_the_first_frame_and_the_time_left() -> None:
    pace = Pace(total=100, started=time.monotonic() - 2.0)
    for pts in range(50, 75):  # 25 frames at 25 fps: 0.96 s after the first
        pace.add(frame(pts))
    assert pace.media_s == pytest.approx(0.96)
    assert pace.speed() == pytest.approx(0.48, rel=0.05)  # 0.96 s in about 2 s
    eta = pace.eta_s()
    assert eta is not None and eta == pytest.approx(6.0, rel=0.05)  # 75 more at 12.5 fps
    assert Pace(total=None, started=time.monotonic()).eta_s() is None
    assert clock(3725.4) == "1:02:05"


@pytest.mark.parametrize("container", ["mp4", "mkv"])  # Matroska counts no frames
def test_the_log_line_has_speed_and_eta_with_max_frames_the_total(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], container: str) -> None:
    src = tmp_path / f"in.{container}"
    write_clip(src, frames=30, fps=25, audio=False)
    assert main(["run", str(src), "-o", str(tmp_path / "out.mkv"), "--model", "dcp",
                 "--max-frames", "12", "--progress-every", "0.001"]) == 0
    lines = [found for line in capsys.readouterr().err.splitlines()
             if (found := LINE.search(line))]
    assert lines, "no progress line with speed and ETA"
    assert int(lines[-1][1]) > 1 and float(lines[-1][2]) > 0  # media time from frame 2 on


def test_the_terminal_bar_has_speed_and_eta(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    write_clip(src, frames=30, fps=25, audio=False)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run_stream.py"), str(src), "-o", str(tmp_path / "o.mkv"),
         "--model", "dcp", "--max-frames", "12"],
        stderr=follower, stdout=subprocess.DEVNULL,
        env={**os.environ, "TQDM_MININTERVAL": "0"})  # every frame drawn
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    bars = [line for line in seen.decode(errors="replace").replace("\r", "\n").splitlines()
            if "/12 [" in line]
    # tqdm's [elapsed<left, rate] is the ETA; the speed is ours
    assert any(re.search(r"\d+/12 \[\d\d:\d\d<\d\d:\d\d, .*speed=[\d.]+x\]", bar)
               for bar in bars), bars
