"""One engine worker serving many stream sessions; ``run`` is a server with one session.

The engine worker takes batches from the :class:`~streamer.runtime.batcher.Batcher` (frames of any
sessions that share a shape), submits them, and hands each enhanced frame back to its session.
For inputs that are not live, while frames are waiting, it keeps one batch in flight: it submits
the next batch before collecting the last, so a GPU computes while the CPU stacks and converts;
when no frame is waiting it collects at once, so a result never waits for the input. A batch
with a live frame is collected at once (latency first).

Stopping: :meth:`Server.drain` (Ctrl-C, SIGTERM) stops every source; what was read is still
enhanced and written, and each output is closed properly. :meth:`Server.abort` makes every wait
give up at once. An error in one session's stage aborts that session (its outputs are still
closed, files with their trailer); an error of the engine aborts them all. :meth:`Server.join`
raises every error, not only the first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from streamer.engine import Engine, EngineBatch, PendingBatch
from streamer.errors import EngineError, RunErrors, StreamerError
from streamer.frames import Frame, Layout
from streamer.queues import Closed, Doorbell
from streamer.runtime.batcher import Batcher, BatchSettings
from streamer.runtime.session import StreamSession
from streamer.threads import StageThread

__all__ = ["EngineStats", "Server"]

log = logging.getLogger(__name__)
Item = tuple[StreamSession, Frame]  # a frame and the session (the batcher's lane) it came from


@dataclass
class EngineStats:
    """What the engine worker did (its own thread writes; readers see a recent value)."""

    batches: int = 0
    frames: int = 0
    busy_s: float = 0.0  # submitting and waiting for results
    batch_sizes: dict[int, int] = field(default_factory=dict)  # size -> batches of that size


class Server:
    """Runs sessions through one engine. With ``stay_open`` (serve) it waits for more
    sessions when all have ended; otherwise (run) it ends with its last session."""

    def __init__(self, engine: Engine, batching: BatchSettings = BatchSettings(), *,
                 stay_open: bool = False) -> None:
        self.engine = engine
        self.batching = batching
        self.stay_open = stay_open
        self.sessions: list[StreamSession] = []
        self.errors: list[BaseException] = []
        self._doorbell = Doorbell()
        self._stop = threading.Event()  # the engine worker gives up
        self._closing = threading.Event()  # serve: no more sessions will come
        self._attention = threading.Event()  # warm-ups are waiting for the engine worker
        self._batcher: Batcher[StreamSession] = Batcher(batching, self._doorbell, self._stop,
                                                        self._attention)
        self._worker = StageThread(self._work, name="hdm-engine")
        self._warm: set[tuple[int, int]] = set()
        self._warm_requests: queue.SimpleQueue[
            tuple[int, int, float | None, bool, threading.Event]] = (
            queue.SimpleQueue())
        self.stats = EngineStats()

    # -- sessions -----------------------------------------------------------------------------
    def add(self, session: StreamSession) -> None:
        """Open a session (source, outputs, layouts) and, once the server runs, start it. A
        session that cannot open raises here and leaves nothing open."""
        info = session.open(self.engine, self._doorbell)
        self.sessions.append(session)
        rate = float(info.rate) if info.rate else None
        if not self._worker.started:
            if info.width and info.height:
                self._warm_up(info.height, info.width, rate, session.live)
            return
        if info.width and info.height and (info.height, info.width) not in self._warm:
            # A new size: the engine worker warms up between batches (only it may drive the
            # engine) before the session's first frame is read, so that its first frames do
            # not wait behind a compile and arrive stale.
            done = threading.Event()
            self._warm_requests.put((info.height, info.width, rate, session.live, done))
            self._attention.set()
            self._doorbell.ring()
            while not done.wait(0.1) and self._worker.running:
                pass
        session.start()
        self._batcher.add(session)

    def _warm_up(self, height: int, width: int, rate: float | None, live: bool) -> None:
        """Compile for a size before timing starts (also pads later short batches); an
        ``auto`` inference size is chosen here, for the first stream of that size's rate and
        liveness."""
        if (height, width) not in self._warm:
            self.engine.warmup(height, width, self.batching.size, rate=rate, live=live)
            self._warm.add((height, width))

    def start(self) -> None:
        for session in self.sessions:
            session.start()
            self._batcher.add(session)
        self._worker.start()

    # -- stopping -----------------------------------------------------------------------------
    def drain(self) -> None:
        """Every source stops reading; what was read is finished."""
        self._closing.set()
        for session in list(self.sessions):
            session.drain()
        self._doorbell.ring()

    @property
    def running(self) -> bool:
        """The engine worker is running."""
        return self._worker.running

    def forget(self, session: StreamSession) -> None:
        """Drop a finished session (serve: a stream removed or ended), so that a long-running
        server does not keep every session it ever ran."""
        if session in self.sessions:
            self.sessions.remove(session)

    def abort(self, error: BaseException) -> None:
        """Every wait gives up; ``error`` is raised from :meth:`join`."""
        self.errors.append(error)
        self._stop.set()
        for session in list(self.sessions):
            session.abort(Closed("the engine stopped"))
        self._doorbell.ring()

    def join(self) -> None:
        """Wait for the engine worker and every session; raises their errors (one as itself,
        several as :class:`~streamer.errors.RunErrors`)."""
        pending = list(self.sessions)
        while not self._worker.wait(0.05) or pending:
            pending = [s for s in pending if not s.join(0.05)]
        errors = [*self.errors, *(e for s in self.sessions for e in s.errors)]
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise RunErrors(errors)

    # -- the engine worker --------------------------------------------------------------------
    def _work(self) -> None:
        in_flight: tuple[list[Item], PendingBatch, float] | None = None
        try:
            while not self._stop.is_set():
                self._attention.clear()
                while not self._warm_requests.empty():
                    height, width, rate, live, done = self._warm_requests.get()
                    self._warm_up(height, width, rate, live)
                    done.set()
                found = self._batcher.next()
                if found.batch:
                    started = time.perf_counter()
                    pending = self._submit(found.batch)
                    if in_flight is not None:
                        self._collect(*in_flight)
                    in_flight = (found.batch, pending, time.perf_counter() - started)
                    live = any(session.live for session, _ in found.batch)
                    if not self.batching.overlap or live or not self._batcher.waiting():
                        self._collect(*in_flight)
                        in_flight = None
                if found.ended:
                    if in_flight is not None:
                        self._collect(*in_flight)
                        in_flight = None
                    for session in found.ended:
                        session.end_of_input()
                if self._batcher.active == 0 and not found.batch and in_flight is None and (
                        not self.stay_open or self._closing.is_set()):
                    return
        except StreamerError as error:
            self.abort(error)
        except Exception as error:  # a CUDA or kernel failure, raised from join()
            log.debug("engine worker failed", exc_info=error)
            failure = EngineError(f"inference failed: {type(error).__name__}: {error}")
            failure.__cause__ = error
            self.abort(failure)

    def _submit(self, batch: Sequence[Item]) -> PendingBatch:
        frames = [frame for _, frame in batch]
        first = frames[0]
        engine_batch = EngineBatch(
            [f.image for f in frames], first.layout, [f.tags.coding for f in frames],
            out_layout=self._out_layout(batch), transfers=[f.tags.transfer for f in frames],
        )
        return self.engine.submit(engine_batch, [session.state for session, _ in batch])

    @staticmethod
    def _out_layout(batch: Sequence[Item]) -> Layout | None:
        """I420 only when every frame's session takes it back as planes."""
        layouts = {session.out_layout(frame) for session, frame in batch}
        return layouts.pop() if len(layouts) == 1 else None

    def _collect(self, batch: list[Item], pending: PendingBatch, submit_s: float) -> None:
        """Wait for a submitted batch and deliver it. A session's infer time is its share of
        what the worker spent submitting and waiting, not the overlap in between."""
        started = time.perf_counter()
        images = pending.result()
        busy = submit_s + time.perf_counter() - started
        share = busy / len(batch)
        stats = self.stats
        stats.batches += 1
        stats.frames += len(batch)
        stats.busy_s += busy
        stats.batch_sizes[len(batch)] = stats.batch_sizes.get(len(batch), 0) + 1
        tasks = pending.tasks or [self.engine.settings.task] * len(batch)
        for (session, frame), image, task in zip(batch, images, tasks, strict=True):
            session.stats.stages["infer"].add(share, 1)
            session.deliver(frame, image, pending.layout, task)

