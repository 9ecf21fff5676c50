"""Progress for programs, as the ffmpeg tool's ``-progress URL`` gives it: a block of
``key=value`` lines every ``every_s`` seconds and one at the end, each block closed by
``progress=continue`` (``progress=end`` for the last), into a file or a descriptor
(``pipe:1``, ``pipe:2``), so a script or a GUI that follows ffmpeg follows a run too. A file
is appended to (the command empties it once: each file of a batch adds its blocks).

The keys are ffmpeg's (``frame``, ``fps``, ``out_time_us``, ``out_time_ms`` which ffmpeg
also gives in microseconds, ``out_time``, ``speed``) plus ``total_frames`` where the input
says how many it has (or ``--max-frames`` does).

:class:`Pace` is the arithmetic of a run's progress (frames, the media time written, speed as
ffmpeg's ``speed=``, an ETA), shared by these blocks and the session's bar and log lines, so
the three never disagree.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TextIO

from streamer.errors import SinkError
from streamer.frames import ANY, Frame, Passthrough, StreamInfo
from streamer.queues import Policy
from streamer.sinks.base import Output
from streamer.sinks.pipe import pipe_descriptor

__all__ = ["Pace", "ProgressSink", "ProgressTarget"]


class Pace:
    """How far a run is: frames written, the media time they span, and from the wall time
    since ``started`` the rate, the speed against real time and what is left."""

    def __init__(self, total: int | None, started: float) -> None:
        self.total = total
        self.started = started
        self.frames = 0
        self.media_s = 0.0  # from the first frame's time to the latest
        self._first_s: float | None = None

    def add(self, frame: Frame) -> None:
        """One frame written (its time, where it has one, moves the media time on)."""
        self.frames += 1
        if frame.pts is not None and frame.time_base is not None:
            seconds = float(frame.pts * frame.time_base)
            self._first_s = seconds if self._first_s is None else self._first_s
            self.media_s = max(self.media_s, seconds - self._first_s)

    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def fps(self) -> float:
        return self.frames / self.elapsed()

    def speed(self) -> float:
        """Media seconds written per wall second: 1.0 is real time (ffmpeg's ``speed=``)."""
        return self.media_s / self.elapsed()

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None without a total or before a frame."""
        if not self.total or not self.frames:
            return None
        return max(self.total - self.frames, 0) / self.fps()


def clock(seconds: float) -> str:
    """``H:MM:SS`` (as tqdm and ffmpeg write a duration)."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


@dataclass(frozen=True)
class ProgressTarget:
    """Where progress goes: a file's path or ``pipe:N``, a block every ``every_s``."""

    url: str
    every_s: float = 0.5  # ffmpeg's -stats_period


class ProgressSink:
    """Counts the enhanced frames and writes progress blocks (a
    :class:`~streamer.sinks.base.Sink` that sees no pixels)."""

    name = "progress"
    accepts = ANY
    wants_packets = False
    unsent = 0

    def __init__(self, target: ProgressTarget, *, live: bool) -> None:
        self.target = target
        self.policy = Policy.DROP_OLDEST if live else Policy.BLOCK
        self._file: TextIO | None = None
        self._pace = Pace(None, time.monotonic())
        self._next = 0.0

    def open(self, info: StreamInfo) -> None:
        fd = pipe_descriptor(self.target.url)
        try:
            self._file = (os.fdopen(os.dup(fd), "w") if fd is not None
                          else open(self.target.url, "a"))  # noqa: SIM115 - closed in close()
        except OSError as error:
            raise SinkError(f"cannot write progress to {self.target.url}: "
                            f"{error.strerror or error}") from error
        self._pace = Pace(info.frames, time.monotonic())
        self._next = self._pace.started + self.target.every_s

    def write(self, output: Output) -> None:
        self._pace.add(output.enhanced)
        if time.monotonic() >= self._next:
            self._next += self.target.every_s
            self._block("continue")

    def _block(self, state: str) -> None:
        assert self._file is not None
        pace = self._pace
        micros = round(pace.media_s * 1e6)
        hours, rest = divmod(micros, 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        lines = [f"frame={pace.frames}", f"fps={pace.fps():.2f}",
                 *([f"total_frames={pace.total}"] if pace.total else []),
                 f"out_time_us={micros}", f"out_time_ms={micros}",
                 f"out_time={hours:02d}:{minutes:02d}:{rest / 1e6:09.6f}",
                 f"speed={pace.speed():.3g}x", f"progress={state}"]
        try:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()
        except OSError as error:
            raise SinkError(f"cannot write progress to {self.target.url}: "
                            f"{error.strerror or error}") from error

    def write_packet(self, packet: Passthrough) -> None:
        """No packets."""

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        """The last block (``progress=end``), then the file closed."""
        if self._file is None:
            return
        try:
            self._block("end")
        finally:
            self._file.close()
            self._file = None
