"""``serve`` past one interpreter (``workers`` > 1): the streams sharded over worker processes,
each running the in-process service over its own streams with its own engines (worker.py),
and this supervisor behind the one HTTP API (http.py, unchanged for clients).

Why processes: on a CPU the per-frame Python work of every stream (decode hand-off, temporal
filters, fan-out to the outputs) runs under one interpreter lock, so one process of many
streams uses about one core for it. Each worker has its own lock, engines and threads (the
cores dealt evenly); streams sharing an engine key are placed together up to a fair share
(placement.py), so they still batch.

The supervisor routes each request to the worker holding the stream, merges the workers'
metrics into one ``/metrics`` (merge.py), and restarts a worker that dies: its streams come
back on the new process (a recording continues in a file of its own, ``NAME.1.mkv``, so what
was written is kept), the restart is counted (``hdm_stream_worker_restarts_total``); a worker
that dies again within 30 s of starting waits 1, 2, 4 ... 60 s before the next start, said in
one line. While a worker is down its streams show as connecting, with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamer.errors import StreamExists
from streamer.process import how_it_ended
from streamer.service import worker as worker_process
from streamer.service.backend import NoStream
from streamer.service.config import FileOutput, ServeConfig, StreamSpec
from streamer.service.guard import judge
from streamer.service.merge import MergedCollector, export, merge
from streamer.service.placement import Load, choose, plan
from streamer.service.rpc import Channel, WorkerError, raise_reply
from streamer.service.service import describe_absent
from streamer.sinks.preview import Snapshot

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

STABLE_S = 30.0  # a worker that ran this long before dying is restarted at once
BACKOFF_MAX_S = 60.0
_CALL_S = 5.0  # a read a worker does not answer in this time fails (503)
_REMOVE_S = 30.0
_DRAIN_S = 40.0
_FINISHED = tuple(state.value for state in worker_process.FINISHED)


@dataclass(eq=False)
class _Worker:
    """One worker slot: the streams placed on it (kept across its restarts) and its process
    of the moment. ``status``: starting (spawned, its configured streams being added), up,
    down (dead, waiting for its next start at ``due``) or stopped."""

    index: int
    specs: dict[str, StreamSpec] = field(default_factory=dict)  # wanted here, in order
    states: dict[str, str] = field(default_factory=dict)  # the last state each reported
    final: dict[str, dict[str, Any]] = field(default_factory=dict)  # finished: last described
    process: BaseProcess | None = None
    channel: Channel | None = None
    generation: int = 0
    answering: bool = False  # its process has imported and reads calls
    status: str = "starting"
    why: str = ""
    born: float = 0.0
    deaths: int = 0  # in a row, each within STABLE_S of its start
    restarts: int = 0
    due: float = 0.0
    started: threading.Event = field(default_factory=threading.Event)
    start_error: tuple[str, str, int] | None = None

    @property
    def running(self) -> bool:
        return self.status in ("starting", "up")

    def live(self) -> list[StreamSpec]:
        """Its streams that have not ended, failed or been stopped."""
        return [spec for sid, spec in self.specs.items() if self.states.get(sid) not in _FINISHED]


class Supervisor:
    """The :class:`~streamer.service.backend.Backend` of ``workers`` processes."""

    def __init__(self, config: ServeConfig, workers: int) -> None:
        self._config = config
        self.workers = [_Worker(i) for i in range(workers)]
        self.placed: dict[str, int] = {}  # stream id -> worker, in the order streams came
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._adding: set[str] = set()
        # what a worker says of a stream while its add is under way (the reply may come after)
        self._early: dict[str, tuple[str, dict[str, Any] | None]] = {}
        self._closing = False
        self._fatal: str | None = None  # a worker could not start at all
        self._threads = max(1, len(os.sched_getaffinity(0)) // workers)
        self._levels = _levels()
        self._context = multiprocessing.get_context("spawn")  # CUDA and threads: no fork
        self._monitor = threading.Thread(target=self._watch, name="hdm-supervisor",
                                         daemon=True)
        self._summary: list[dict[str, Any]] = []

    @property
    def config(self) -> ServeConfig:
        return self._config

    # -- lifecycle (the command's thread) -------------------------------------------------------
    def start(self) -> None:
        """Deal the configured streams, start every worker, wait until each has started its
        streams; a worker that cannot is one error (its own, or why it died)."""
        for worker, specs in zip(self.workers, plan(self._config.streams, len(self.workers)),
                                 strict=True):
            worker.specs = {spec.id: spec for spec in specs}
        for spec in self._config.streams:
            self.placed[spec.id] = next(w.index for w in self.workers if spec.id in w.specs)
        with self._lock:
            for worker in self.workers:
                self._spawn(worker)
        self._monitor.start()
        for worker in self.workers:
            while not worker.started.wait(0.2) and self._fatal is None:
                pass
            if self._fatal is not None:
                raise WorkerError(self._fatal)
            if worker.start_error is not None:
                raise_reply(*worker.start_error)
        self.ready.set()

    def drain(self) -> None:
        """Every worker drains its streams and exits (one that does not within 40 s is
        killed); nothing is restarted from here on."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            asked = [(w, w.channel.call("drain")) for w in self.workers
                     if w.running and w.channel is not None]
        deadline = time.monotonic() + _DRAIN_S
        described: dict[str, dict[str, Any]] = {}
        for worker, future in asked:
            try:
                for stream in future.result(max(0.0, deadline - time.monotonic())):
                    described[stream["id"]] = stream
            except (WorkerError, TimeoutError) as error:
                log.warning("worker %d did not drain: %s", worker.index, error or "timed out")
        for worker in self.workers:
            process = worker.process
            if process is not None:
                process.join(max(1.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
        with self._lock:
            self._summary = [described.get(sid) or self._absent(sid) for sid in self.placed]

    def summary(self) -> list[dict[str, Any]]:
        return list(self._summary)

    # -- processes -------------------------------------------------------------------------------
    def _spawn(self, worker: _Worker) -> None:
        """A new process for ``worker`` with its live streams (under the lock)."""
        worker.generation += 1
        worker.answering = False
        worker.started.clear()
        worker.start_error = None
        specs = worker.live()
        if worker.restarts:
            specs = [_continued(spec, worker.restarts) for spec in specs]
        config = dataclasses.replace(self._config, streams=tuple(specs), workers=1)
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=worker_process.main, name=f"hdm-stream-worker-{worker.index}",
            args=(theirs, config, worker.index, self._threads, self._levels))
        try:
            process.start()
        except OSError as error:  # out of processes or memory: a death like any other
            ours.close()
            theirs.close()
            worker.process, worker.channel, worker.born = None, None, time.monotonic()
            self._died(worker, f"cannot start a process: {error.strerror or error}")
            return
        theirs.close()
        on_event = functools.partial(self._event, worker, worker.generation)
        worker.process, worker.born, worker.status = process, time.monotonic(), "starting"
        worker.channel = Channel(ours, on_event, f"worker {worker.index}")
        log.info("worker %d (pid %s): %s", worker.index, process.pid,
                 ", ".join(spec.id for spec in specs) or "no streams yet")

    def _watch(self) -> None:
        """Wait for a worker's death; start those whose time has come."""
        while True:
            with self._lock:
                if self._closing:
                    return
                watched = {w.process.sentinel: w for w in self.workers
                           if w.running and w.process is not None}
                due = [w.due for w in self.workers if w.status == "down"]
            timeout = min([0.5, *(max(0.0, d - time.monotonic()) for d in due)])
            ended = wait(list(watched), timeout)
            with self._lock:
                if self._closing:
                    return
                for sentinel in ended:
                    worker = watched[sentinel]  # type: ignore[index]
                    assert worker.process is not None
                    self._died(worker, how_it_ended(worker.process))
                for worker in self.workers:
                    if worker.status == "down" and time.monotonic() >= worker.due:
                        worker.restarts += 1
                        self._spawn(worker)

    def _died(self, worker: _Worker, why: str) -> None:
        """Say why, once, and when it starts again (under the lock)."""
        if worker.start_error is not None:
            why = f"{why}: {worker.start_error[1]}"
        if worker.channel is not None:
            worker.channel.gone(f"worker {worker.index} is restarting: it died ({why})")
        pid = worker.process.pid if worker.process is not None else None
        if not self.ready.is_set() and worker.restarts == 0:
            worker.status, worker.why = "stopped", why
            self._fatal = f"worker {worker.index} could not start: {why}"
            return
        quick = time.monotonic() - worker.born < STABLE_S
        worker.deaths = worker.deaths + 1 if quick else 1
        delay = 0.0 if worker.deaths == 1 else min(2.0 ** (worker.deaths - 2), BACKOFF_MAX_S)
        worker.status, worker.why, worker.due = "down", why, time.monotonic() + delay
        streams = ", ".join(spec.id for spec in worker.live()) or "no streams"
        if delay:
            log.warning("worker %d (pid %s) died (%s), %d times in a row within %g s of "
                        "starting: backing off, next start in %g s, with %s", worker.index,
                        pid, why, worker.deaths, STABLE_S, delay, streams)
        else:
            log.warning("worker %d (pid %s) died (%s); starting it again with %s",
                        worker.index, pid, why, streams)

    def _event(self, worker: _Worker, generation: int, name: str, payload: Any) -> None:
        """What a worker sends on its own (its reader thread)."""
        if name == "log":
            _relog(*payload)
            return
        with self._lock:
            if generation != worker.generation:
                return  # a dead process's last words
            if name == "hello":
                worker.answering = True
            elif name == "started":
                worker.start_error = payload
                if payload is None and worker.status == "starting":
                    worker.status = "up"
                    if worker.restarts:
                        log.info("worker %d is back (restart %d)", worker.index,
                                 worker.restarts)
                worker.started.set()
            elif name == "state":
                stream_id, state, final = payload
                if stream_id in self._adding:
                    self._early[stream_id] = (state, final)
                elif stream_id in worker.specs:
                    worker.states[stream_id] = state
                    if final is not None:
                        worker.final[stream_id] = final
                    else:
                        worker.final.pop(stream_id, None)

    # -- what the API asks -----------------------------------------------------------------------
    async def _ask(self, worker: _Worker, method: str, *args: Any,
                   timeout: float | None = _CALL_S, queue: bool = False) -> Any:
        """A call to ``worker``; while its process is still importing, a read fails at once
        and a call to ``queue`` (an add, a removal) waits in its pipe."""
        with self._lock:
            channel = worker.channel if worker.running else None
            if channel is None or not (queue or worker.answering):
                raise WorkerError(self._state_of(worker))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(channel.call(method, *args)),
                                          timeout)
        except TimeoutError:
            raise WorkerError(f"worker {worker.index} did not answer in {timeout:g} s "
                              "(busy?)") from None

    async def _ask_running(self, method: str) -> list[tuple[_Worker, Any]]:
        """``method`` of every running worker at once; those that fail are left out."""
        with self._lock:
            running = [w for w in self.workers if w.running]
        answers = await asyncio.gather(*(self._ask(w, method) for w in running),
                                       return_exceptions=True)
        return [(w, a) for w, a in zip(running, answers, strict=True)
                if not isinstance(a, BaseException)]

    def _state_of(self, worker: _Worker) -> str:
        if worker.status == "starting":
            return f"worker {worker.index} is starting"
        if worker.status == "down":
            wait_s = max(0.0, worker.due - time.monotonic())
            return (f"worker {worker.index} is restarting: it died ({worker.why}); next start "
                    f"in {wait_s:.0f} s")
        return f"worker {worker.index} is {worker.status}"

    def _absent(self, stream_id: str) -> dict[str, Any]:
        """A stream its worker cannot describe now (under the lock)."""
        worker = self.workers[self.placed[stream_id]]
        final = worker.final.get(stream_id)
        return final or describe_absent(worker.specs[stream_id], self._state_of(worker))

    def _worker_of(self, stream_id: str) -> _Worker:
        with self._lock:
            index = self.placed.get(stream_id)
        if index is None:
            raise NoStream(stream_id)
        return self.workers[index]

    async def streams(self) -> list[dict[str, Any]]:
        by_id = {stream["id"]: stream for _, answer in await self._ask_running("streams")
                 for stream in answer}
        with self._lock:
            return [by_id.get(sid) or self._absent(sid) for sid in self.placed]

    async def stream(self, stream_id: str) -> dict[str, Any]:
        worker = self._worker_of(stream_id)
        try:
            described = await self._ask(worker, "stream", stream_id)
        except WorkerError:
            described = None
        with self._lock:
            if stream_id not in self.placed:  # removed meanwhile
                raise NoStream(stream_id)
            return described or self._absent(stream_id)

    async def preview(self, stream_id: str) -> Snapshot | None:
        worker = self._worker_of(stream_id)
        try:
            snapshot: Snapshot | None = await self._ask(worker, "preview", stream_id)
        except WorkerError:
            return None
        return snapshot

    async def add(self, spec: StreamSpec) -> dict[str, Any]:
        """Judged against the endpoints every worker's streams hold, then started on the
        worker that holds its id (a finished stream added again), else on one that has its
        engine, else on the least loaded (placement.choose)."""
        with self._lock:
            index = self.placed.get(spec.id)
            if spec.id in self._adding or (index is not None and self.workers[index].states.get(
                    spec.id) not in _FINISHED):
                raise StreamExists(f"a stream with id {spec.id!r} is already running")
            bound = {e: s.id for w in self.workers for s in w.live() for e in s.endpoints}
            if index is None:
                index = choose(spec.engine_key, [
                    Load(w.index, w.running, len(w.live()),
                         frozenset(s.engine_key for s in w.live())) for w in self.workers])
            if index is None:
                raise WorkerError("no worker process is running (they are restarting)")
            self._adding.add(spec.id)
        worker = self.workers[index]
        try:
            judge(spec, bound)
            described: dict[str, Any] = await self._ask(worker, "add", spec, timeout=None,
                                                        queue=True)
            with self._lock:
                self.placed[spec.id] = index  # an id added again keeps its place, as in one
                worker.specs[spec.id] = spec  # process
                state, final = self._early.get(spec.id, (described["state"], None))
                worker.states[spec.id] = state
                if final is None:
                    worker.final.pop(spec.id, None)
                else:
                    worker.final[spec.id] = final
        finally:
            with self._lock:
                self._adding.discard(spec.id)
                self._early.pop(spec.id, None)
        log.info("stream %s added to worker %d", spec.id, index)
        return described

    async def remove(self, stream_id: str) -> None:
        """Drained by its worker; dropped here even when that worker is down (it does not
        come back with it)."""
        worker = self._worker_of(stream_id)
        try:
            await self._ask(worker, "remove", stream_id, timeout=_REMOVE_S, queue=True)
        except WorkerError as error:
            log.info("stream %s removed while its worker is away (%s)", stream_id, error)
        with self._lock:
            self.placed.pop(stream_id, None)
            worker.specs.pop(stream_id, None)
            worker.states.pop(stream_id, None)
            worker.final.pop(stream_id, None)

    async def problems(self) -> list[str]:
        with self._lock:
            found = [self._state_of(w) for w in self.workers if not w.running]
        for worker, problems in await self._ask_running("problems"):
            found += [f"worker {worker.index}: {problem}" for problem in problems]
        return found

    async def waiting(self) -> dict[str, str] | None:
        if not self.ready.is_set():
            return None
        answers = dict(await self._ask_running("waiting"))
        waiting: dict[str, str] = {}
        with self._lock:
            for worker in self.workers:
                answer = answers.get(worker)
                for spec in worker.live():
                    state = "connecting" if answer is None else answer.get(spec.id)
                    if state is not None:
                        waiting[spec.id] = state
        return waiting

    def figures(self) -> list[tuple[int, int, bool, int]]:
        """Each worker's number, restarts, whether it runs, and streams carried."""
        with self._lock:
            return [(w.index, w.restarts, w.running, len(w.live())) for w in self.workers]

    async def metrics(self) -> bytes:
        """The supervisor's own families first (worker restarts, its process), then each
        running worker's, merged (merge.py); a worker that does not answer is left out of
        this scrape."""
        parts = [export([_WorkerCollector(self), ProcessCollector(registry=None)])]
        parts += [answer for _, answer in await self._ask_running("metrics")]
        registry = CollectorRegistry()
        registry.register(MergedCollector(merge(parts)))
        return generate_latest(registry)


class _WorkerCollector(Collector):
    """Each worker: restarts so far, whether it runs, the streams it carries."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily("hdm_stream_worker_restarts", "Times a worker process "
                                       "was started again after it died", labels=["worker"])
        up = GaugeMetricFamily("hdm_stream_worker_up", "1 while the worker process runs",
                               labels=["worker"])
        streams = GaugeMetricFamily("hdm_stream_worker_streams", "Streams placed on the "
                                    "worker (not ended, failed or stopped)", labels=["worker"])
        for index, restarted, running, carried in self.supervisor.figures():
            label = [str(index)]
            restarts.add_metric(label, restarted)
            up.add_metric(label, 1.0 if running else 0.0)
            streams.add_metric(label, carried)
        yield from (restarts, up, streams)


def _continued(spec: StreamSpec, restart: int) -> StreamSpec:
    """``spec`` as it runs after its worker's ``restart``-th start: a recording goes on in a
    file of its own (``cam1.mkv`` -> ``cam1.1.mkv``), keeping what the dead worker wrote."""
    outputs = tuple(
        dataclasses.replace(o, path=str(Path(o.path).with_name(
            f"{Path(o.path).stem}.{restart}{Path(o.path).suffix}")))
        if isinstance(o, FileOutput) else o for o in spec.outputs)
    return dataclasses.replace(spec, outputs=outputs)


def _levels() -> dict[str, int]:
    """The levels set on this process's loggers ("" the root), for the workers to mirror."""
    levels = {"": logging.getLogger().level}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


def _relog(name: str, level: int, message: str, created: float, trace: str | None) -> None:
    """A worker's log line, handled here as if logged here (the same handlers and format)."""
    record = logging.makeLogRecord({"name": name, "levelno": level, "msg": message,
                                    "levelname": logging.getLevelName(level),
                                    "created": created, "exc_text": trace})
    logging.getLogger(name).handle(record)

