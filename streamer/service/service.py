"""``hdm-stream serve``: many streams through shared engines, with an HTTP API, Prometheus
metrics and a live web preview.

Streams whose (model, task, weights) agree share one engine and its worker (one
:class:`~streamer.runtime.server.Server` each), so their frames are batched together, each with
its own temporal state, latency bound and counters. Each stream connects in its own thread: one that
cannot connect retries with backoff and shows as down, never holding the others back; a live
stream that fails later reconnects inside its source. Streams can be added and removed while the
service runs. SIGTERM (or Ctrl-C) drains every stream and exits.
"""

from __future__ import annotations

import dataclasses
import enum
import gc
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch

from streamer.engine import Engine, engine_for_settings
from streamer.errors import ConfigError, SinkError, StreamerError, StreamExists
from streamer.queues import Stopping
from streamer.runtime.server import Server
from streamer.runtime.session import StreamSession
from streamer.service.config import (
    EngineKey,
    HlsOutput,
    OutputSpec,
    PublishOutput,
    ServeConfig,
    StreamSpec,
    UrlOutput,
)
from streamer.sinks.base import Sink
from streamer.sinks.build import OutputTarget, build_sinks
from streamer.sinks.file import FileTarget
from streamer.sinks.network import HlsTarget, UrlTarget
from streamer.sinks.preview import PreviewSink
from streamer.sources.video import VideoSource
from streamer.stats import LatencyHistogram, RunStats
from streamer.threads import StageThread

__all__ = ["Counts", "Service", "ServedStream", "StreamState", "describe_absent"]

log = logging.getLogger(__name__)


class StreamState(enum.Enum):
    CONNECTING = "connecting"  # not yet opened
    UP = "up"  # frames flow (a live source between reconnects is still up, and says so)
    DOWN = "down"  # the last attempt to open failed; retrying
    ENDED = "ended"  # a file or finite source ran to its end
    FAILED = "failed"  # stopped by an error
    STOPPED = "stopped"  # removed or drained


_TOTALS = ("frames_in", "frames_out", "dropped_queue", "dropped_stale", "unsent",
           "corrupt_packets", "reconnects")


@dataclasses.dataclass(frozen=True)
class Counts:
    """A stream's counters at one moment, over every session it has run (monotonic):
    ``totals`` by name, ``output_drops`` (frames the outputs' queues dropped; the preview's,
    by design, not counted) and ``latency`` per output label."""

    totals: dict[str, int]
    output_drops: int
    latency: dict[str, LatencyHistogram]


class ServedStream:
    """One configured stream: connects (retrying), runs its session on its engine's server,
    and keeps counters that survive a session being replaced."""

    def __init__(self, spec: StreamSpec, server: Server, config: ServeConfig) -> None:
        self.spec = spec
        self.server = server
        self.config = config
        self.state = StreamState.CONNECTING
        self.last_error: str | None = None
        self.preview = PreviewSink(config.preview_fps)
        self.session: StreamSession | None = None
        # a retired session's counts move into these with the session cleared, under the
        # lock, so a scrape never sees them in both places
        self._counts_lock = threading.Lock()
        self._finished: dict[str, int] = dict.fromkeys(_TOTALS, 0)
        self._latency: dict[str, LatencyHistogram] = {}  # per output, of sessions that ended
        self._output_drops = 0  # of sessions that ended
        self._reconnects_open = 0  # failed opening attempts
        self._stop = threading.Event()
        self._thread = StageThread(self._run, name=f"hdm-stream-{spec.id}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Drain: the source stops, what was read is written, outputs close."""
        self._stop.set()
        session = self.session
        if session is not None:
            session.drain()

    def wait(self, timeout: float | None = None) -> bool:
        return self._thread.wait(timeout)

    # -- what the API and the metrics read ------------------------------------------------------
    def counts(self) -> Counts:
        """The counters of the sessions that ended and of the live one, read together.
        Latency is decoded to written, per output (``N:kind``, N its place in the stream's
        outputs): one observation per frame per output; the preview, which skips frames by
        design, is not an output here."""
        with self._counts_lock:
            totals = dict(self._finished)
            totals["reconnects"] += self._reconnects_open
            drops = self._output_drops
            latency = {label: LatencyHistogram() for label in self.output_labels}
            for label, histogram in self._latency.items():
                latency[label].merge(histogram)
            session = self.session
            if session is not None:
                live = _session_counts(session)
                for key in _TOTALS:
                    totals[key] += live[key]
                drops += _real_output_drops(session)
                for label, histogram in _session_latency(session, self.output_labels).items():
                    latency[label].merge(histogram)
        return Counts(totals, drops, latency)

    @property
    def output_labels(self) -> list[str]:
        return _labels(self.spec)

    @property
    def up(self) -> bool:
        session = self.session
        return self.state is StreamState.UP and session is not None and session.connected

    @property
    def running_task(self) -> str | None:
        """The task the stream runs now: its spec's, or with ``task: auto`` the one its scene
        chose (``none``: frames left untouched; None until the first frame)."""
        if self.spec.model.task != "auto":
            return self.spec.model.task
        session = self.session
        return session.state.task.current if session is not None else None

    def describe(self) -> dict[str, Any]:
        counts = self.counts()
        totals, by_output = counts.totals, counts.latency
        # the stream's figure: its slowest output's (a stream with none: nothing measured)
        p50 = max((h.percentile(50) or 0.0 for h in by_output.values()), default=None)
        p99 = max((h.percentile(99) or 0.0 for h in by_output.values()), default=None)
        return {
            "id": self.spec.id, "source": self.spec.input, "task": self.spec.model.task,
            "running_task": self.running_task, "model": self.spec.model.model,
            "engine": self.server.engine.description,
            "state": self.state.value, "up": self.up, "last_error": self.last_error,
            "outputs": [o.label for o in self.spec.outputs], **totals,
            "latency_ms": {"p50": None if p50 is None else round(p50 * 1000, 1),
                           "p99": None if p99 is None else round(p99 * 1000, 1),
                           "outputs": {label: _ms(h) for label, h in by_output.items()}},
            "preview": self.preview.latest is not None,
        }

    # -- the stream's thread ----------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.spec.source.reconnect.backoff_initial_s
        while not self._stop.is_set():
            session = self._new_session()
            try:
                self.server.add(session)
            except (SinkError, ConfigError) as error:
                # an output that cannot open (a missing folder, a bound endpoint, a protocol
                # refused) does not heal by retrying: the stream stops, saying why
                self.state, self.last_error = StreamState.FAILED, str(error)
                log.warning("stream %s failed: %s", self.spec.id, error)
                return
            except StreamerError as error:
                self._record_failed_open(error)
                if self._stop.wait(delay * random.uniform(0.75, 1.25)):  # jitter
                    break
                delay = min(delay * 2, self.spec.source.reconnect.backoff_max_s)
                continue
            with self._counts_lock:
                self.session = session
            if self._stop.is_set():  # stopped while connecting: stop() saw no session
                session.drain()
            self.state, self.last_error = StreamState.UP, None
            delay = self.spec.source.reconnect.backoff_initial_s
            while not session.join(0.2):
                pass
            self._retire(session)
            if session.errors:
                self.state, self.last_error = StreamState.FAILED, str(session.errors[0])
                log.warning("stream %s failed: %s", self.spec.id, self.last_error)
                return
            self.state = StreamState.STOPPED if self._stop.is_set() else StreamState.ENDED
            return
        self.state = StreamState.STOPPED

    def _record_failed_open(self, error: StreamerError) -> None:
        if self.last_error != str(error):
            log.warning("stream %s is down: %s (retrying)", self.spec.id, error)
        self.state, self.last_error = StreamState.DOWN, str(error)
        with self._counts_lock:
            self._reconnects_open += 1

    def _retire(self, session: StreamSession) -> None:
        with self._counts_lock:
            counts = _session_counts(session)
            for key in _TOTALS:
                self._finished[key] += counts[key]
            for label, histogram in _session_latency(session, self.output_labels).items():
                self._latency.setdefault(label, LatencyHistogram()).merge(histogram)
            self._output_drops += _real_output_drops(session)
            self.session = None
        self.server.forget(session)

    def _new_session(self) -> StreamSession:
        spec, config = self.spec, self.config
        read = spec.source
        source = VideoSource(spec.input, stream_id=spec.id, options=read.options,
                             reconnect=read.reconnect, live=read.live,
                             tone_map=read.tone_map, deinterlace=read.deinterlace)
        stopping = Stopping()
        # serve writes no side by side (the preview shows input | enhanced)
        outputs = build_sinks([_target(o) for o in spec.outputs], spec.encode,
                              live=source.live, stopping=stopping, side_by_side=False)
        sinks: list[Sink] = [self.preview, *outputs]
        return StreamSession(source, sinks, batching=config.batch, stopping=stopping)


def describe_absent(spec: StreamSpec, why: str) -> dict[str, Any]:
    """A stream as the API shows it while the worker process that runs it starts or restarts:
    connecting, ``why`` as its last error, nothing counted yet (the keys of describe())."""
    return {
        "id": spec.id, "source": spec.input, "task": spec.model.task, "model": spec.model.model,
        "engine": None, "state": StreamState.CONNECTING.value, "up": False, "last_error": why,
        "outputs": [o.label for o in spec.outputs], **dict.fromkeys(_TOTALS, 0),
        "latency_ms": {"p50": None, "p99": None,
                       "outputs": {label: {"p50": None, "p99": None}
                                   for label in _labels(spec)}},
        "preview": False,
    }


def _labels(spec: StreamSpec) -> list[str]:
    return [f"{i}:{o.TYPE}" for i, o in enumerate(spec.outputs)]


def _target(spec: OutputSpec) -> OutputTarget:
    if isinstance(spec, PublishOutput):
        return spec  # the run's publish settings, as they are
    if isinstance(spec, UrlOutput):
        return UrlTarget(spec.url, spec.format, {} if spec.protocols is None else
                         {"protocol_whitelist": spec.protocols})
    if isinstance(spec, HlsOutput):
        target = HlsTarget(spec.path)
        if spec.protocols is not None:
            target.options["protocol_whitelist"] = spec.protocols
        return target
    return FileTarget(Path(spec.path))


def _ms(histogram: LatencyHistogram) -> dict[str, float | None]:
    p50, p99 = histogram.percentile(50), histogram.percentile(99)
    return {"p50": None if p50 is None else round(p50 * 1000, 1),
            "p99": None if p99 is None else round(p99 * 1000, 1)}


def _session_latency(session: StreamSession, labels: list[str]) -> dict[str, LatencyHistogram]:
    """A session's latency per output: its sinks are the preview, then the outputs in order."""
    histograms = session.live_latency()[1:]
    return dict(zip(labels, histograms, strict=False))


def _real_output_drops(session: StreamSession) -> int:
    """A session's output drops, less the preview's (it drops by design)."""
    return sum(n for name, n in session.output_drops().items() if name != PreviewSink.name)


def _session_counts(session: StreamSession) -> dict[str, int]:
    stats: RunStats = session.stats
    return {"frames_in": stats.frames_in, "frames_out": stats.frames_out,
            "dropped_queue": session.frames.dropped, "dropped_stale": stats.dropped_stale,
            "unsent": session.unsent(), "corrupt_packets": session.source.corrupt_packets,
            "reconnects": session.source.reconnects}



class Service:
    """The streams of a :class:`ServeConfig` and the engines they share.

    ``_lock`` guards ``streams``, ``servers`` and the adds under way, and is never held
    while an engine builds (a build can take minutes): the first add of an engine key builds
    it alone, later adds of that key wait on its future, every other call goes on."""

    def __init__(self, config: ServeConfig,
                 build_engine: Callable[[Any], Engine] | None = None) -> None:
        self.config = config
        self.servers: dict[EngineKey, Server] = {}
        self.streams: dict[str, ServedStream] = {}
        self._build_engine = build_engine or self._engine_for
        self._lock = threading.Lock()
        self._building: dict[EngineKey, Future[Server]] = {}
        self._adding: set[str] = set()  # ids whose add is under way
        self.ready = threading.Event()

    def _engine_for(self, spec: StreamSpec) -> Engine:
        return engine_for_settings(spec.model, self.config.smoothing,
                                   stabiliser=self.config.stabiliser)

    def start(self) -> None:
        """Build the engines and start every configured stream."""
        for spec in self.config.streams:
            self.add(spec)
        self.ready.set()

    def engines(self) -> list[tuple[EngineKey, Server]]:
        """The engines running now with their keys, taken under the lock (an add may be
        inserting one)."""
        with self._lock:
            return list(self.servers.items())

    def add(self, spec: StreamSpec) -> ServedStream:
        """Start a stream (StreamExists when its id is taken, ConfigError when its engine
        cannot be built)."""
        with self._lock:
            running = self.streams.get(spec.id)
            if spec.id in self._adding or (running is not None and running.state not in (
                    StreamState.STOPPED, StreamState.ENDED, StreamState.FAILED)):
                raise StreamExists(f"a stream with id {spec.id!r} is already running")
            self._adding.add(spec.id)
        key = spec.engine_key
        try:
            while True:
                server = self._server_for(key, spec)
                with self._lock:
                    if self.servers.get(key) is server:  # not released by a remove meanwhile
                        stream = ServedStream(spec, server, self.config)
                        self.streams[spec.id] = stream
                        break
        finally:
            with self._lock:
                self._adding.discard(spec.id)
        stream.start()
        return stream

    def _server_for(self, key: EngineKey, spec: StreamSpec) -> Server:
        """The running engine of ``key``, built here (outside the lock) when there is none,
        or waited for when another add is building it."""
        with self._lock:
            server = self.servers.get(key)
            if server is not None:
                return server
            building = self._building.get(key)
            if building is None:
                future: Future[Server] = Future()
                self._building[key] = future
        if building is not None:
            return building.result()  # the builder's error, if it failed
        try:
            server = self._start_server(spec)
        except BaseException as error:
            with self._lock:
                del self._building[key]
            future.set_exception(error)
            raise
        with self._lock:
            self.servers[key] = server
            del self._building[key]
        future.set_result(server)
        return server

    def _start_server(self, spec: StreamSpec) -> Server:
        try:
            engine = self._build_engine(spec)
        except ConfigError:
            raise
        except Exception as error:  # weights for another task, say: one line
            raise ConfigError(f"the engine for {spec.model.task}/{spec.model.model} with "
                              f"weights {spec.model.weights!r} cannot be built: {error}"
                              ) from error
        server = Server(engine, self.config.batch, stay_open=True)
        server.start()
        log.info("engine for %s/%s: %s", spec.model.task, spec.model.model,
                 server.engine.description)
        return server

    def all_streams(self) -> list[ServedStream]:
        """The streams now, taken under the lock (an add or a remove may be under way)."""
        with self._lock:
            return list(self.streams.values())

    def bound_endpoints(self) -> dict[str, str]:
        """The ZeroMQ endpoints the streams that may still run hold, to the stream's id."""
        done = (StreamState.STOPPED, StreamState.ENDED, StreamState.FAILED)
        return {e: s.spec.id for s in self.all_streams() if s.state not in done
                for e in s.spec.endpoints}

    def not_ready(self) -> dict[str, str]:
        """The streams down, failed or not yet connected, with their state (empty: ready)."""
        waiting = (StreamState.CONNECTING, StreamState.DOWN, StreamState.FAILED)
        return {s.spec.id: s.state.value for s in self.all_streams() if s.state in waiting}

    def remove(self, stream_id: str, timeout: float = 10.0) -> bool:
        """Drain and drop a stream; False when there is none by that id. An engine no stream
        uses any more is stopped and dropped (its memory freed, its metrics gone)."""
        with self._lock:
            stream = self.streams.pop(stream_id, None)
        if stream is None:
            return False
        stream.stop()
        stream.wait(timeout)
        self._release(stream.server)
        return True

    def _release(self, server: Server) -> None:
        with self._lock:
            if any(s.server is server for s in self.streams.values()):
                return
            for key, held in list(self.servers.items()):
                if held is server:
                    del self.servers[key]
        server.drain()
        try:
            server.join()
        except StreamerError as error:
            log.warning("%s", error)
        log.info("engine %s released: no stream uses it", server.engine.description)
        del server
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def drain(self, timeout: float = 30.0) -> None:
        """Every stream drains; then the engines stop."""
        streams = self.all_streams()
        for stream in streams:
            stream.stop()
        deadline = time.monotonic() + timeout
        for stream in streams:
            stream.wait(max(0.0, deadline - time.monotonic()))
        servers = [server for _, server in self.engines()]
        for server in servers:
            server.drain()
        for server in servers:
            try:
                server.join()
            except StreamerError as error:
                log.warning("%s", error)
