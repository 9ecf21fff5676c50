"""Frames of many streams into batches the engine can run at once.

A batch holds frames of one shape, layout and sample type (what one tensor can hold), from any
number of streams. Sessions are visited in turn, one frame each per pass, so a busy stream
cannot starve the others; a frame that does not fit the batch being filled is held (its stream
waits, keeping its order) and starts a later batch. A batch goes once it is full or
``max_delay_ms`` after its first frame. Live streams drop frames older than ``latency_ms``
here, before any work is spent on them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from streamer.errors import ConfigError
from streamer.frames import Frame, Layout
from streamer.queues import END, Closed, Doorbell, StageQueue

__all__ = ["BatchSettings", "Batcher", "Lane", "Round"]

_POLL_S = 0.05


@dataclass(frozen=True)
class BatchSettings:
    """Args:
    size: frames per inference batch.
    max_delay_ms: a batch waits at most this long for more frames before it runs short.
    latency_ms: live sources drop frames older than this when they reach inference.
    queue_batches: capacity of each queue between stages, in batches.
    overlap: for inputs that are not live, while frames are waiting, submit the next batch
        before collecting the last (keeps a GPU busy while the CPU prepares frames).
    """

    size: int = 4
    max_delay_ms: float = 40.0
    latency_ms: float = 500.0
    queue_batches: int = 2
    overlap: bool = True

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"size must be >= 1 (frames per batch), got {self.size}")
        if self.queue_batches < 1:
            raise ConfigError(f"queue_batches must be >= 1, got {self.queue_batches}")
        if self.max_delay_ms < 0:
            raise ConfigError(f"max_delay_ms must be >= 0, got {self.max_delay_ms}")
        if self.latency_ms <= 0:
            raise ConfigError(f"latency_ms must be > 0, got {self.latency_ms}")

    @property
    def queue_frames(self) -> int:
        return self.size * self.queue_batches


class Lane(Protocol):
    """What the batcher needs of a stream (a :class:`~streamer.runtime.session.StreamSession`):
    its queue of decoded frames, and whether a frame is too old to be worth enhancing."""

    @property
    def frames(self) -> StageQueue[Frame]: ...

    def stale(self, frame: Frame) -> bool: ...


L = TypeVar("L", bound=Lane)
_Key = tuple[Layout, tuple[int, ...], np.dtype]


def _key(frame: Frame) -> _Key:
    return frame.layout, frame.image.shape, frame.image.dtype


@dataclass
class Round(Generic[L]):
    """What one call of :meth:`Batcher.next` found: a batch (maybe empty) of frames with the
    lanes they came from, and the lanes whose input ended (after every frame of theirs already
    handed out)."""

    batch: list[tuple[L, Frame]]
    ended: list[L]


class Batcher(Generic[L]):
    """Takes frames from the lanes' queues (all sharing one doorbell) into batches."""

    def __init__(self, settings: BatchSettings, doorbell: Doorbell, stop: threading.Event,
                 attention: threading.Event | None = None) -> None:
        """``attention``: while set, a wait for a first frame returns at once (the engine
        worker has something else to do)."""
        self.settings = settings
        self._doorbell = doorbell
        self._stop = stop
        self._attention = attention or threading.Event()
        self._lanes: list[L] = []
        self._held: dict[L, Frame] = {}
        self._turn = 0
        self._lock = threading.Lock()  # add() comes from other threads

    def add(self, lane: L) -> None:
        with self._lock:
            self._lanes.append(lane)
        self._doorbell.ring()

    @property
    def active(self) -> int:
        """Lanes whose input has not ended yet."""
        return len(self._lanes)

    def waiting(self) -> bool:
        """Frames are queued or held for the next batch."""
        with self._lock:
            return bool(self._held) or any(len(lane.frames) for lane in self._lanes)

    def next(self) -> Round[L]:
        """The next batch: waits for a first frame (returning early, with an empty batch, when
        a lane ends or the batcher stops), then fills up to ``size`` until the deadline."""
        found: Round[L] = Round([], [])
        key: _Key | None = None
        deadline = 0.0
        while not self._stop.is_set():
            seen = self._doorbell.rings
            took = False
            with self._lock:
                rotation = self._lanes[self._turn:] + self._lanes[:self._turn]
                self._turn = (self._turn + 1) % max(1, len(self._lanes))
            for lane in rotation:
                if len(found.batch) == self.settings.size:
                    break
                frame = self._take(lane, key, found.ended)
                if frame is None:
                    continue
                if key is None:
                    key = _key(frame)
                    deadline = time.monotonic() + self.settings.max_delay_ms / 1000
                found.batch.append((lane, frame))
                took = True
            if len(found.batch) == self.settings.size:
                break
            if found.batch and time.monotonic() >= deadline:
                break
            if not found.batch and (found.ended or not self._lanes
                                    or self._attention.is_set()):
                break
            if not took:
                wait = deadline - time.monotonic() if found.batch else _POLL_S
                self._doorbell.wait(seen, max(0.0, wait))
        return found

    def _take(self, lane: L, key: _Key | None, ended: list[L]) -> Frame | None:
        """The lane's next frame if it fits ``key``; None when it has none ready (or holds
        one that does not fit). A lane whose queue ended (or aborted) leaves the rotation."""
        held = self._held.get(lane)
        if held is not None:
            if key is not None and _key(held) != key:
                return None
            return self._held.pop(lane)
        while True:
            try:
                item = lane.frames.get(0.0)
            except Closed:
                item = END
            if item is None:
                return None
            if item is END:
                with self._lock:
                    self._lanes.remove(lane)
                ended.append(lane)
                return None
            if lane.stale(item):
                continue
            if key is not None and _key(item) != key:
                self._held[lane] = item
                return None
            return item
