"""What the pipeline needs of an output, and the worker that gives each output its own queue,
thread and policy (a slow preview drops frames; a file never does, and neither stalls the
other or the engine)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from streamer.frames import Frame, Layout, Passthrough, StreamInfo
from streamer.queues import END, Closed, Policy, StageQueue
from streamer.stats import LatencyHistogram, StageTimer
from streamer.threads import StageThread

__all__ = ["Output", "Sink", "SinkWorker"]

log = logging.getLogger(__name__)
_POLL_S = 0.05


@dataclass(frozen=True)
class Output:
    """An enhanced frame with the input frame it came from (for side-by-side, flicker)."""

    enhanced: Frame
    original: Frame


class Sink(Protocol):
    """An output. Every method runs in the sink's own worker thread (a ZeroMQ socket is made,
    used and closed by one thread, as ZeroMQ requires); ``open`` runs while the session waits
    and the input is open, before any frame is read (passthrough streams are copied then)."""

    @property
    def name(self) -> str:
        """Names the output in the summary and in logs."""

    @property
    def accepts(self) -> frozenset[Layout]:
        """The layouts ``write`` takes for the enhanced frame."""

    @property
    def policy(self) -> Policy:
        """BLOCK: nothing is lost; DROP_OLDEST: latency first."""

    @property
    def wants_packets(self) -> bool:
        """Audio and subtitle packets are to be copied to this output."""

    @property
    def unsent(self) -> int:
        """Frames the output could not deliver and gave up on (a consumer gone)."""

    def open(self, info: StreamInfo) -> None: ...

    def write(self, output: Output) -> None: ...

    def write_packet(self, packet: Passthrough) -> None: ...

    def idle(self) -> None:
        """Called when no item came for a moment (about 50 ms): keep-alives go here."""

    def close(self, error: BaseException | None = None) -> None:
        """Finish the output (trailer, end message); ``error``: the run failed, finish what
        can be finished and raise nothing new."""
        ...


class SinkWorker:
    """Runs one sink in its own thread behind a bounded queue with the sink's policy.

    ``on_error`` is called (from the worker thread) with an exception the sink raised; the
    sink is then closed with it, and everything still queued is discarded.
    """

    def __init__(self, sink: Sink, capacity: int, stop: threading.Event,
                 on_error: Callable[[BaseException], None]) -> None:
        self.sink = sink
        self.queue: StageQueue[Output | Passthrough] = StageQueue(capacity, sink.policy, stop)
        self.timer = StageTimer()
        self.latency = LatencyHistogram()
        self.written = 0
        self._on_error = on_error
        self._info: StreamInfo | None = None
        self._opened = threading.Event()
        self._open_error: BaseException | None = None
        self._thread = StageThread(self._run, name=f"hdm-sink-{sink.name}")

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    def open(self, info: StreamInfo) -> None:
        """Start the worker and open the sink in it; raises what ``open`` raised (the worker
        then ends at once)."""
        self._info = info
        self._thread.start()
        self._opened.wait()
        if self._open_error is not None:
            self._thread.wait()
            raise self._open_error

    def put(self, item: Output | Passthrough) -> None:
        """Queue an item (by the sink's policy); raises Closed once the session aborts."""
        if isinstance(item, Passthrough) and not self.sink.wants_packets:
            return
        self.queue.put(item)

    def finish(self) -> None:
        """No more items: the sink closes once it has written what is queued."""
        self.queue.put(END)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the sink is closed and its thread has ended."""
        return self._thread.wait(timeout)

    def _run(self) -> None:
        assert self._info is not None
        try:
            self.sink.open(self._info)
        except BaseException as failure:  # noqa: BLE001 - raised by open() in the caller
            self._open_error = failure
            return
        finally:
            self._opened.set()
        error: BaseException | None = None
        try:
            while (item := self.queue.get(_POLL_S)) is not END:
                if item is None:
                    self.sink.idle()
                    continue
                started = time.perf_counter()
                if isinstance(item, Passthrough):
                    self.sink.write_packet(item)
                    continue
                self.sink.write(item)
                self.timer.add(time.perf_counter() - started, 1)
                self.latency.add(time.monotonic() - item.original.capture_time)
                self.written += 1
        except Closed:
            error = Closed("the run was aborted")
        except BaseException as failure:  # noqa: BLE001 - handed to the session, re-raised
            error = failure
            self._on_error(failure)
        self._close(error)

    def _close(self, error: BaseException | None) -> None:
        try:
            self.sink.close(error)
        except BaseException as failure:  # noqa: BLE001 - as above
            if error is None:
                self._on_error(failure)
            else:
                log.warning("%s: %s", self.sink.name, failure)
