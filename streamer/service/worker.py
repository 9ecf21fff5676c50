"""One worker process of ``serve`` with ``workers`` > 1: the in-process :class:`Service` (its
streams, its own engines shared among them) over the streams the supervisor gives it,
answering the supervisor's calls over a pipe (rpc.py).

The supervisor owns the lifecycle: a worker ignores SIGINT and SIGTERM (a terminal's Ctrl-C
and systemd's stop reach every process of the group; the supervisor drains the workers in
order), drains when told, and drains by itself when its pipe closes (the supervisor is gone),
so a recording is finished either way. Its log lines go up the pipe and out through the
supervisor's handlers (the same format, JSON included), prefixed with the worker's number.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import torch
from prometheus_client import ProcessCollector

from streamer.errors import StreamerError
from streamer.process import keep_freed_memory
from streamer.service.config import ServeConfig, StreamSpec
from streamer.service.merge import Family, export
from streamer.service.metrics import ServiceCollector
from streamer.service.rpc import error_reply
from streamer.service.service import Service, StreamState
from streamer.sinks.preview import Snapshot

__all__ = ["FINISHED", "main"]

FINISHED = (StreamState.ENDED, StreamState.FAILED, StreamState.STOPPED)
_WATCH_S = 0.25  # how often stream states are compared and changes sent up


class _Pipe:
    """The worker's end: sends from any thread, one at a time; a pipe whose other end is gone
    swallows what is sent (the worker is draining by then)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.conn.send(message)


class _Forward(logging.Handler):
    """Log records up the pipe, as (logger, level, message, time, traceback text)."""

    def __init__(self, pipe: _Pipe, index: int) -> None:
        super().__init__()
        self.pipe, self.index = pipe, index

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"worker {self.index}: {record.getMessage()}"
            trace = (logging.Formatter().formatException(record.exc_info)
                     if record.exc_info else None)
            self.pipe.send(("event", "log", (record.name, record.levelno, message,
                                             record.created, trace)))
        except Exception:  # noqa: BLE001 - a log line must never break the worker
            self.handleError(record)


def main(conn: Connection, config: ServeConfig, index: int, threads: int,
         levels: dict[str, int]) -> None:
    """The process's entry (spawned): ``config`` holds this worker's streams; ``threads``
    its share of the cores; ``levels`` the supervisor's logger levels."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pipe = _Pipe(conn)
    logging.basicConfig(level=levels.get("", logging.INFO), handlers=[_Forward(pipe, index)],
                        force=True)
    for name, level in levels.items():
        if name:
            logging.getLogger(name).setLevel(level)
    torch.set_num_threads(threads)
    keep_freed_memory()
    _Worker(Service(config), pipe).run()


class _Worker:
    """The supervisor's calls answered from this process's service, its events sent up."""

    def __init__(self, service: Service, pipe: _Pipe) -> None:
        self.service = service
        self.pipe = pipe
        self.finished = threading.Event()  # drained and said so: the process may end
        self._drain_lock = threading.Lock()
        self._drained: list[dict[str, Any]] | None = None
        # a removal may come while the stream is still being added (its engine building, at
        # start or over HTTP): it waits for that add, and a configured stream not yet started
        # is skipped
        self._lock = threading.Lock()
        self._adding: dict[str, threading.Event] = {}
        self._removed: set[str] = set()
        self._stopping = False  # a drain began: the configured streams not started stay so
        self.calls: dict[str, Callable[..., Any]] = {
            "streams": lambda: [s.describe() for s in service.all_streams()],
            "stream": self._stream, "preview": self._preview, "metrics": self._metrics,
            "problems": self._problems, "waiting": self._waiting,
            "add": self._add_asked, "remove": self._remove, "drain": self._drain,
        }
        self.blocking = {"add", "remove", "drain"}  # in threads: reads go on meanwhile

    def run(self) -> None:
        self.pipe.send(("event", "hello", None))  # answering from now on
        threading.Thread(target=self._start, name="hdm-worker-start", daemon=True).start()
        threading.Thread(target=self._watch, name="hdm-worker-watch", daemon=True).start()
        conn = self.pipe.conn
        while not self.finished.is_set():
            try:
                if not conn.poll(0.2):
                    continue
                call_id, method, args = conn.recv()
            except (EOFError, OSError):  # the supervisor is gone: finish what runs
                self._drain()
                break
            if method in self.blocking:
                threading.Thread(target=self._answer, args=(call_id, method, args),
                                 name=f"hdm-worker-{method}", daemon=True).start()
            else:
                self._answer(call_id, method, args)
        conn.close()

    def _answer(self, call_id: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            reply: tuple[Any, ...] = ("reply", call_id, True, self.calls[method](*args))
        except Exception as error:  # every failure is answered, as its kind (logged if not ours)
            if not isinstance(error, StreamerError):
                logging.getLogger(__name__).exception("%s failed", method)
            reply = ("reply", call_id, False, error_reply(error))
        self.pipe.send(reply)
        if method == "drain":
            self.finished.set()

    def _start(self) -> None:
        """The configured streams (Service.start's work, less those removed meanwhile); an
        engine that cannot be built is said, and the worker ends (serve in one process exits
        then too)."""
        try:
            for spec in self.service.config.streams:
                with self._lock:
                    if spec.id in self._removed or self._stopping:
                        continue
                self._add(spec)
            self.service.ready.set()
        except Exception as error:  # said to the supervisor, which does not wait forever
            if not isinstance(error, StreamerError):
                logging.getLogger(__name__).exception("starting the streams failed")
            self.pipe.send(("event", "started", error_reply(error)))
            self._drain()
            self.finished.set()
            return
        self.pipe.send(("event", "started", None))

    def _watch(self) -> None:
        """Each stream's state when it changes; a finished one with its last description,
        so that a restart after this worker's death neither runs it again nor forgets it."""
        seen: dict[str, tuple[int, StreamState]] = {}
        while not self.finished.wait(_WATCH_S):
            for stream in self.service.all_streams():
                now = (id(stream), stream.state)
                if seen.get(stream.spec.id) != now:
                    seen[stream.spec.id] = now
                    final = stream.describe() if stream.state in FINISHED else None
                    self.pipe.send(("event", "state", (stream.spec.id, stream.state.value,
                                                       final)))

    def _add(self, spec: StreamSpec) -> dict[str, Any]:
        with self._lock:
            self._adding[spec.id] = done = threading.Event()
        try:
            return self.service.add(spec).describe()
        finally:
            done.set()
            with self._lock:
                if self._adding.get(spec.id) is done:
                    del self._adding[spec.id]

    def _add_asked(self, spec: StreamSpec) -> dict[str, Any]:
        """A stream added over HTTP (one removed before may come back under its id)."""
        with self._lock:
            self._removed.discard(spec.id)
        return self._add(spec)

    def _remove(self, stream_id: str) -> bool:
        with self._lock:
            self._removed.add(stream_id)
            adding = self._adding.get(stream_id)
        if adding is not None:
            adding.wait()
        return self.service.remove(stream_id) or adding is not None

    def _stream(self, stream_id: str) -> dict[str, Any] | None:
        stream = self.service.streams.get(stream_id)
        return None if stream is None else stream.describe()

    def _preview(self, stream_id: str) -> Snapshot | None:
        stream = self.service.streams.get(stream_id)
        return None if stream is None else stream.preview.latest

    def _metrics(self) -> list[Family]:
        return export([ServiceCollector(self.service), ProcessCollector(registry=None)])

    def _problems(self) -> list[str]:
        stopped = [f"{task}/{model} ({weights})" for (model, task, weights), server
                   in self.service.engines() if not server.running]
        return [f"engines stopped: {stopped}"] if stopped else []

    def _waiting(self) -> dict[str, str] | None:
        return self.service.not_ready() if self.service.ready.is_set() else None

    def _drain(self) -> list[dict[str, Any]]:
        """Every stream drained, once; their last descriptions (the command's summary)."""
        self._stopping = True
        with self._lock:
            adding = list(self._adding.values())
        for done in adding:  # a stream whose engine is building would start after the drain
            done.wait()
        with self._drain_lock:
            if self._drained is None:
                self.service.drain()
                self._drained = [s.describe() for s in self.service.all_streams()]
            return self._drained
