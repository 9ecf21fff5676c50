"""One stream: its source, its outputs, its temporal state and its statistics.

The session decodes in its own thread into a bounded queue (blocking for files, dropping the
oldest frame for live sources) that the server's batcher reads; the engine worker hands each
enhanced frame back with :meth:`StreamSession.deliver`, which fans it out to every output's own
queue and thread. The frame layout is negotiated once, when the session opens: what the source
offers and the engine takes decides how frames travel in (I420 planes or RGB); what every output
accepts decides how they come back.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from typing import Never

import av
import numpy as np
from tqdm import tqdm

from streamer.engine import Engine, TemporalState
from streamer.errors import SinkError, SourceError
from streamer.frames import ANY, RGB, Frame, Layout, StreamInfo, negotiate
from streamer.queues import END, Closed, Doorbell, Policy, StageQueue, Stopping
from streamer.runtime.batcher import BatchSettings
from streamer.sinks.base import Output, Sink, SinkWorker
from streamer.sinks.progress import Pace, clock
from streamer.sources import Source
from streamer.stats import LatencyHistogram, RunStats
from streamer.threads import StageThread

__all__ = ["StreamSession"]

log = logging.getLogger(__name__)


class _Meter:
    """Flicker and progress, off the engine's thread (a sink that writes nothing). Progress is
    a bar on a terminal, and a log line every ``every_s`` elsewhere (a service's journal, a CI
    log), where a bar's carriage returns would make one endless line. Both say the speed
    against real time (ffmpeg's ``speed=``: below 1x a live source would fall behind) and,
    where the total is known (the input's frames, or ``--max-frames``), the time left."""

    name = "meter"
    accepts = ANY
    wants_packets = False
    unsent = 0

    def __init__(self, stats: RunStats, live: bool, progress: bool, every_s: float) -> None:
        self.stats = stats
        self.policy = Policy.DROP_OLDEST if live else Policy.BLOCK
        self.progress = progress
        self.every_s = every_s
        self._bar: tqdm[Never] | None = None
        self._name = ""
        self._pace = Pace(None, time.monotonic())
        self._next_line = 0.0

    def open(self, info: StreamInfo) -> None:
        self._name = info.name
        self._pace = Pace(info.frames, time.monotonic())
        self._next_line = self._pace.started + self.every_s
        if self.progress and sys.stderr.isatty():
            self._bar = tqdm(total=info.frames, unit="frame", leave=False, desc=info.name)

    def write(self, output: Output) -> None:
        self.stats.flicker.update_frames(output.original, output.enhanced)
        self._pace.add(output.enhanced)
        if self._bar is not None:
            self._bar.set_postfix_str(f"speed={self._pace.speed():.3g}x", refresh=False)
            self._bar.update(1)  # tqdm's own ETA, from its total
        elif self.progress and time.monotonic() >= self._next_line:
            self._next_line += self.every_s
            log.info("%s", self.line())

    def line(self) -> str:
        """``name: N/T frames, F fps, speed S x, ETA H:MM:SS`` (the total and the ETA where
        the total is known)."""
        pace = self._pace
        total = f"/{pace.total}" if pace.total else ""
        eta = pace.eta_s()
        return (f"{self._name}: {pace.frames}{total} frames, {pace.fps():.1f} fps, "
                f"speed {pace.speed():.3g}x" + (f", ETA {clock(eta)}" if eta is not None else ""))

    def write_packet(self, packet: object) -> None:
        """No packets."""

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        if self._bar is not None:
            self._bar.close()


class StreamSession:
    """A source and its sinks, run by a :class:`~streamer.runtime.server.Server`."""

    def __init__(self, source: Source, sinks: Sequence[Sink], *,
                 batching: BatchSettings = BatchSettings(), progress: bool = False,
                 progress_every_s: float = 10.0, stopping: Stopping | None = None) -> None:
        if not sinks:
            raise SourceError(f"{source.stream_id}: no outputs")
        self.source = source
        self.sinks = list(sinks)
        self.id = source.stream_id
        self.live = source.live
        self.batching = batching
        self.progress = progress
        self.progress_every_s = progress_every_s
        self.stopping = stopping or Stopping()
        self.stats = RunStats()
        self.state = TemporalState()
        self.errors: list[BaseException] = []
        self.info: StreamInfo | None = None
        self.in_layouts: frozenset[Layout] = RGB
        self.out_layouts: frozenset[Layout] = RGB
        self.frames: StageQueue[Frame] = StageQueue(1, Policy.BLOCK, self.stopping.abort)
        self._workers: list[SinkWorker] = []  # one per output
        self._meter: SinkWorker | None = None
        self._decoder = StageThread(self._decode, name=f"hdm-decode-{self.id}")

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self, engine: Engine, doorbell: Doorbell) -> StreamInfo:
        """Open the source and every output (each in its worker's thread), and negotiate the
        layouts; a failure on the way closes what was opened (a file output that got no frame
        is removed)."""
        info = self.source.open()
        opened: list[SinkWorker] = []
        try:
            if info.width and info.height:
                engine.check_size(info.height, info.width)  # before anything is written
            # An engine that takes planes only to give planes back hears the outputs first.
            through = [s.accepts for s in self.sinks] if engine.planes_only_through else []
            self.in_layouts = negotiate(info.layouts, engine.accepts, *through)
            self.out_layouts = negotiate(self.in_layouts, *(s.accepts for s in self.sinks))
            meter = _Meter(self.stats, self.live, self.progress, self.progress_every_s)
            workers = [SinkWorker(sink, self.batching.queue_frames, self.stopping.abort,
                                  self._output_failed) for sink in [meter, *self.sinks]]
            for worker in workers:
                worker.open(info)
                opened.append(worker)
        except BaseException:
            self.stopping.abort.set()  # the outputs opened so far close, in their threads
            for worker in opened:
                worker.wait()
            self.source.close()
            raise
        self._meter, *self._workers = workers
        policy = Policy.DROP_OLDEST if self.live else Policy.BLOCK
        self.frames = StageQueue(self.batching.queue_frames, policy, self.stopping.abort,
                                 doorbell)
        self.info = info
        return info

    def start(self) -> None:
        """Start decoding (the outputs' workers run since ``open``)."""
        self.stats.started = time.monotonic()
        self._decoder.start()

    def drain(self) -> None:
        """Stop reading; what was read is still enhanced and written."""
        self.stats.interrupted = True
        self.stopping.drain.set()
        self.source.stop()

    def abort(self, error: BaseException) -> None:
        """Stop everything at once: every wait of this session gives up, outputs are closed
        with ``error`` (files still get their trailer), which :meth:`join` raises."""
        if not isinstance(error, Closed):
            self.errors.append(error)
        self.stopping.abort.set()
        self.source.stop()
        self.frames.wake()
        for worker in self._all_workers():
            worker.queue.wake()

    def _output_failed(self, error: BaseException) -> None:
        """An output's failure aborts the session; an OS or FFmpeg error there (a full disk,
        a connection reset) is the SinkError it means, so it reads as one line."""
        if isinstance(error, OSError | av.error.FFmpegError):
            wrapped = SinkError(f"an output cannot be written: {error}")
            wrapped.__cause__ = error
            error = wrapped
        self.abort(error)

    def _all_workers(self) -> list[SinkWorker]:
        return [*self._workers, *([self._meter] if self._meter is not None else [])]

    def join(self, timeout: float = 0.2) -> bool:
        """Wait up to ``timeout`` for the session to end; True once it has, with the
        statistics final."""
        if not self._decoder.wait(timeout):
            return False
        if not all([worker.wait(timeout) for worker in self._all_workers()]):
            return False
        self._collect()
        return True

    # -- what a running session can tell -------------------------------------------------------
    @property
    def connected(self) -> bool:
        """The source is open (a live one between reconnect attempts is not)."""
        return self.source.connected

    def live_latency(self) -> list[LatencyHistogram]:
        """Decode-to-written latency of each output so far (read while running)."""
        return [worker.latency for worker in self._workers]

    def output_drops(self) -> dict[str, int]:
        """Frames each output's queue discarded (live outputs drop rather than stall)."""
        return {worker.sink.name: worker.dropped for worker in self._workers}

    def unsent(self) -> int:
        """Frames outputs gave up on (a consumer gone, a connection down)."""
        return sum(worker.sink.unsent for worker in self._workers)

    # -- the engine worker's side -------------------------------------------------------------
    def stale(self, frame: Frame) -> bool:
        """A live frame too old to be worth enhancing (counted)."""
        if not self.live:
            return False
        if frame.capture_time >= time.monotonic() - self.batching.latency_ms / 1000:
            return False
        self.stats.dropped_stale += 1
        return True

    def out_layout(self, frame: Frame) -> Layout | None:
        """How this frame should come back from the engine: I420 planes when the frame came
        as planes and every output takes them, else RGB (None)."""
        return Layout.I420 if frame.layout is Layout.I420 and Layout.I420 in self.out_layouts \
            else None

    def deliver(self, frame: Frame, image: np.ndarray, layout: Layout,
                task: str | None = None) -> None:
        """Hand an enhanced frame (enhanced by ``task``) to every output's queue (from the
        engine worker)."""
        output = Output(dataclasses.replace(frame, image=image, layout=layout, task=task),
                        frame)
        self.stats.frames_out += 1
        for worker in self._all_workers():
            try:
                worker.put(output)
            except Closed:
                return

    def end_of_input(self) -> None:
        """Every frame has been delivered: outputs finish what they have queued and close.
        An input that gave no frame is an error (and its file output is removed)."""
        if self.stats.frames_in == 0 and not self.errors and not self.stopping.abort.is_set() \
                and not self.stats.interrupted:
            self.errors.append(SourceError(
                f"{self.info.name if self.info else self.id}: no video frames could be "
                "decoded; nothing was written"))
        for worker in self._all_workers():
            worker.finish()

    # -- the decode thread --------------------------------------------------------------------
    def _decode(self) -> None:
        timer = self.stats.stages["decode"]
        try:
            started = time.perf_counter()
            for item in self.source.read(self.in_layouts):
                if isinstance(item, Frame):
                    timer.add(time.perf_counter() - started, 1)
                    self.stats.frames_in += 1
                    self.frames.put(item)
                else:
                    for worker in self._workers:
                        worker.put(item)
                started = time.perf_counter()
        except Closed:
            pass
        except BaseException as error:  # noqa: BLE001 - raised from join()
            self.abort(error)
        finally:
            self.frames.put(END)

    def _collect(self) -> None:
        stats = self.stats
        stats.finished = stats.finished or time.monotonic()
        stats.dropped_queue = self.frames.dropped
        stats.reconnects = self.source.reconnects
        stats.corrupt_packets = self.source.corrupt_packets
        stats.ended_early = self.source.ended_early
        stats.scene_cuts = self.state.scene_cuts
        stats.tasks, stats.task_switches = dict(self.state.task.frames), self.state.task.switches
        for worker in self._workers:
            stats.stages[worker.sink.name] = worker.timer
            stats.latency[worker.sink.name] = worker.latency
        stats.dropped_sinks = self.output_drops()
        stats.unsent = self.unsent()
