"""``run_stream.py`` as a user's shell runs it, sent signals once its frames flow: what Ctrl-C,
SIGTERM and SIGKILL leave behind is what these tests check."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[2]


def signalled_run(args: Sequence[str | Path], signals: Sequence[tuple[float, int]]
                  ) -> tuple[int, str, float]:
    """Start ``run_stream.py ARGS``; once frames flow, send each ``(after_s, signum)`` in turn,
    ``after_s`` after the one before. (exit code, stderr, seconds from the last signal to the
    exit)."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run_stream.py"), *map(str, args), "--progress-every", "0.2"],
        stderr=subprocess.PIPE, text=True,
        # A test run started in the background inherits SIGINT ignored (POSIX shells ignore it
        # for background jobs); give the child the default a terminal user's Ctrl-C meets.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    try:
        seen = ""
        deadline = time.monotonic() + 60
        while " frames, " not in seen and time.monotonic() < deadline:  # a progress line
            seen += process.stderr.read(1)
        for after_s, signum in signals:
            time.sleep(after_s)
            process.send_signal(signum)
        sent = time.monotonic()
        _, err = process.communicate(timeout=60)
        return process.returncode, seen + err, time.monotonic() - sent
    finally:
        if process.poll() is None:  # a hang fails this test, not the next ones
            process.kill()
            process.communicate()


def frame_times(path: Path, rate: int) -> list[int]:
    """Each decoded frame's presentation time, in frames of ``rate``."""
    with av.open(str(path)) as container:
        return [round(float(frame.time or 0) * rate) for frame in container.decode(video=0)]
