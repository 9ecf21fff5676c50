"""Calls between ``serve``'s supervisor and a worker process over a pipe (a socket pair).

Messages are pickled tuples: a call ``(id, method, args)``; its answer ``("reply", id, True,
value)`` or ``("reply", id, False, (kind, message, status))``; an event the worker sends on
its own ``("event", name, payload)`` (its log lines, a stream's state, that it started).
Errors cross as (kind, message, status) rather than pickled exceptions, so each arrives as
the class the HTTP side maps to a status (a pickled :class:`Refused` would lose its status).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from streamer.errors import ConfigError, StreamerError, StreamExists
from streamer.service.guard import Refused

__all__ = ["Channel", "WorkerError", "error_reply", "raise_reply"]

OnEvent = Callable[[str, Any], None]


class WorkerError(StreamerError):
    """A worker process that died, cannot start, or failed inside a call (HTTP: 503 while
    it restarts)."""


def error_reply(error: BaseException) -> tuple[str, str, int]:
    """``error`` as it crosses the pipe: (kind, message, HTTP status)."""
    if isinstance(error, Refused):
        return ("refused", str(error), error.status)
    if isinstance(error, StreamExists):
        return ("exists", str(error), 409)
    if isinstance(error, ConfigError):
        return ("config", str(error), 400)
    return ("failed", f"{type(error).__name__}: {error}", 500)


def raise_reply(kind: str, message: str, status: int) -> None:
    """The error a worker sent, raised here as its class."""
    if kind == "refused":
        raise Refused(message, status)
    if kind == "exists":
        raise StreamExists(message)
    if kind == "config":
        raise ConfigError(message)
    raise WorkerError(message)


class Channel:
    """The supervisor's end of one worker's pipe: any thread calls (a Future per call); one
    reader thread hands each answer to its caller and each event to ``on_event``. When the
    pipe closes (the worker exited or died) every call waiting, and every later one, fails
    with a WorkerError saying ``gone``."""

    def __init__(self, conn: Connection, on_event: OnEvent, name: str) -> None:
        self._conn = conn
        self._on_event = on_event
        self._name = name
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._pending: dict[int, Future[Any]] = {}
        self._gone: str | None = None
        self._reader = threading.Thread(target=self._read, name=f"hdm-rpc-{name}", daemon=True)
        self._reader.start()

    def call(self, method: str, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._gone is None:
                call_id = next(self._ids)
                self._pending[call_id] = future
                try:
                    self._conn.send((call_id, method, args))
                    return future
                except (OSError, ValueError):  # its end closed under us
                    del self._pending[call_id]
            gone = self._gone or f"{self._name} is not running"
        future.set_exception(WorkerError(gone))
        return future

    def gone(self, why: str) -> None:
        """Say why the worker went: calls from now on fail with that."""
        with self._lock:
            self._gone = why

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "reply":
                _, call_id, ok, value = message
                with self._lock:
                    future = self._pending.pop(call_id, None)
                if future is None:
                    continue
                if ok:
                    future.set_result(value)
                else:
                    try:
                        raise_reply(*value)
                    except StreamerError as error:
                        future.set_exception(error)
            else:
                self._on_event(message[1], message[2])
        with self._lock:
            self._gone = self._gone or f"{self._name} is not running"
            pending, self._pending = self._pending, {}
            gone = self._gone
            self._conn.close()  # here, once nothing reads it
        for future in pending.values():
            future.set_exception(WorkerError(gone))
