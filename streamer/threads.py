"""Stage threads whose end can be waited for safely under Ctrl-C.

In CPython 3.11, a KeyboardInterrupt that lands inside ``Thread.join(timeout)`` can mark a
thread that is still running as stopped (``threading._wait_for_tstate_lock`` releases the lock
the running thread holds, bpo-45274), so ``is_alive()`` then lies and the interpreter may exit
under a stage that is still writing (seen: a torch-backed array freed during shutdown, which
aborts the process). Each stage therefore signals its own end with an Event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["StageThread"]


class StageThread:
    """A daemon thread running ``target`` once."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._target = target
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._target()
        finally:
            self._done.set()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    @property
    def running(self) -> bool:
        return self.started and not self._done.is_set()

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the target has returned (or the thread was never started); the thread
        itself is then joined, which takes a moment at most."""
        if not self.started:
            return True
        if not self._done.wait(timeout):
            return False
        self._thread.join()
        return True
