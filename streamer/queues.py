"""Bounded queues between stages, with the per-source policy.

``BLOCK`` (files): a full queue makes the producer wait, so no frame is lost, duplicated or
reordered. ``DROP_OLDEST`` (live sources): a full queue discards its oldest item to make room,
so latency stays bounded; each discard is counted. Every queue ends with the private END marker.
"""

from __future__ import annotations

import collections
import enum
import threading
from typing import Generic, TypeVar

__all__ = ["END", "Closed", "Policy", "StageQueue"]

T = TypeVar("T")


class _End(enum.Enum):
    """The end-of-stream marker's type: one member, so ``item is END`` narrows for mypy."""

    END = "END"

    def __repr__(self) -> str:
        return "END"


END = _End.END


class Closed(Exception):
    """The pipeline is stopping: the item was not queued."""


class Policy(enum.Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"


class StageQueue(Generic[T]):
    def __init__(self, maxsize: int, policy: Policy, stop: threading.Event) -> None:
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
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

    def get(self, timeout: float | None = None) -> T | _End | None:
        """The next item, or None when ``timeout`` passes first."""
        with self._changed:
            if not self._items and not self._changed.wait_for(lambda: bool(self._items), timeout):
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def __len__(self) -> int:
        return len(self._items)
