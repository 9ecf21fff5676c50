"""Bounded queues between stages, with a policy per consumer.

``BLOCK`` (files): a full queue makes the producer wait, so no frame is lost, duplicated or
reordered. ``DROP_OLDEST`` (live sources): a full queue discards its oldest item to make room,
so latency stays bounded; each discard is counted. Every queue ends with the private END marker.
When the stop event is set (an abort), waits on both ends give up with :class:`Closed`.
"""

from __future__ import annotations

import collections
import enum
import threading
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["END", "Closed", "Doorbell", "Policy", "StageQueue", "Stopping"]

T = TypeVar("T")


class _End(enum.Enum):
    """The end-of-stream marker's type: one member, so ``item is END`` narrows for mypy."""

    END = "END"

    def __repr__(self) -> str:
        return "END"


END = _End.END


class Closed(Exception):
    """The pipeline is stopping: the item was not queued."""


@dataclass(frozen=True)
class Stopping:
    """The one vocabulary for stopping, shared by every wait of a session.

    ``drain`` (Ctrl-C, SIGTERM): stop reading; what was read is still processed and written.
    ``abort`` (an error): every wait gives up at once (queues raise :class:`Closed`).
    """

    drain: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)


class Policy(enum.Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"


class Doorbell:
    """Rung by every put of the queues that share it, so one consumer can wait on many."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.rings = 0

    def ring(self) -> None:
        with self._changed:
            self.rings += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Return once rung after ``seen`` rings were counted, or after ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self.rings != seen, timeout)


class StageQueue(Generic[T]):
    def __init__(self, maxsize: int, policy: Policy, stop: threading.Event,
                 doorbell: Doorbell | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"a queue needs room for at least one item, got {maxsize}")
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
        self._doorbell = doorbell
        self._items: collections.deque[T | _End] = collections.deque()
        self._stop = stop
        self._changed = threading.Condition()

    def put(self, item: T | _End) -> None:
        """Queue ``item``; blocks (BLOCK) or drops the oldest (DROP_OLDEST) when full.

        The END marker is always queued. Raises Closed when the pipeline stops while waiting.
        """
        with self._changed:
            if item is not END and self.policy is Policy.DROP_OLDEST:
                while len(self._items) >= self.maxsize and self._items[0] is not END:
                    self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.maxsize and item is not END:
                    if self._stop.is_set():
                        raise Closed
                    self._changed.wait(0.1)
            self._items.append(item)
            self._changed.notify_all()
        if self._doorbell is not None:
            self._doorbell.ring()

    def get(self, timeout: float | None = None) -> T | _End | None:
        """The next item, or None when ``timeout`` passes first. Raises Closed once the
        pipeline aborts: what is still queued is abandoned."""
        with self._changed:
            if self._stop.is_set():
                raise Closed
            if not self._items and not self._changed.wait_for(
                    lambda: bool(self._items) or self._stop.is_set(), timeout):
                return None
            if self._stop.is_set():
                raise Closed
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def wake(self) -> None:
        """Wake every waiter (after the stop event is set)."""
        with self._changed:
            self._changed.notify_all()

    def __len__(self) -> int:
        return len(self._items)
