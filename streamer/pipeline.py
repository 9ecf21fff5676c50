"""Wires the stages: decode -> batch + infer -> encode / publish, one thread each.

Stages are joined by bounded queues whose policy follows the source (files block, live sources
drop the oldest frames). For inputs that are not live, while frames are waiting, the inference
stage keeps one batch in flight: it submits the next batch before collecting the last, so a GPU
computes while the CPU stacks and converts; when no frame is waiting it collects at once, so a
result never waits for the input. Live sources collect every batch at once (latency first).
When the engine converts colours on the device, 8-bit 4:2:0 frames travel as I420 planes, and
come back as planes when only a yuv420p file is written. Shutdown: the END marker flows through
every queue; ``stop()`` (Ctrl-C, SIGTERM) drains: it stops the source and the rest is processed,
so the output file is closed properly. An exception in any stage stops the run and is re-raised
from ``join()`` after the sinks are closed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from streamer.engine import Engine, PendingBatch
from streamer.errors import ConfigError, StreamerError
from streamer.file_sink import FileSink, FileSinkSettings
from streamer.frames import Frame
from streamer.publish import Publisher, PublishSettings
from streamer.queues import END, Closed, Policy, StageQueue
from streamer.source import VideoSource
from streamer.stats import RunStats

__all__ = ["BatchSettings", "Pipeline"]

log = logging.getLogger(__name__)
_POLL_S = 0.05


@dataclass(frozen=True)
class BatchSettings:
    """Args:
    size: frames per inference batch.
    max_delay_ms: a batch waits at most this long for more frames before it runs short.
    latency_ms: live sources drop frames older than this when they reach inference.
    queue_batches: capacity of each queue between stages, in batches.
    overlap: for inputs that are not live, while frames are waiting, submit the next batch
        before collecting the last (keeps a GPU busy while the CPU prepares frames).
    """

    size: int = 4
    max_delay_ms: float = 40.0
    latency_ms: float = 500.0
    queue_batches: int = 2
    overlap: bool = True

    def __post_init__(self) -> None:
        if self.size < 1 or self.queue_batches < 1:
            raise ConfigError(f"size and queue_batches must be >= 1, got {self.size} and "
                              f"{self.queue_batches}")
        if self.max_delay_ms < 0 or self.latency_ms <= 0:
            raise ConfigError(f"need max_delay_ms >= 0 and latency_ms > 0, got "
                              f"{self.max_delay_ms} and {self.latency_ms}")


Batch = tuple[list[Frame], list[np.ndarray]]


class Pipeline:
    """One source through one engine to a file and/or a ZeroMQ endpoint."""

    def __init__(
        self,
        source: VideoSource,
        engine: Engine,
        *,
        output: tuple[Path, FileSinkSettings] | None = None,
        publish: PublishSettings | None = None,
        batching: BatchSettings = BatchSettings(),
        progress: bool = True,
    ) -> None:
        if publish is not None and publish.endpoint is None:
            publish = None
        if output is None and publish is None:
            raise StreamerError("nothing to do: give an output file or a publish endpoint")
        self.source = source
        self.engine = engine
        self.output = output
        self.publish = publish
        self.batching = batching
        self.progress = progress
        self.stats = RunStats()
        self._stop = threading.Event()  # abort: every wait gives up
        self._drain = threading.Event()  # drain: stop reading, finish what was read
        policy = Policy.DROP_OLDEST if source.kind.live else Policy.BLOCK
        capacity = batching.size * batching.queue_batches
        self._frames: StageQueue[Frame] = StageQueue(capacity, policy, self._stop)
        self._results: StageQueue[Batch] = StageQueue(batching.queue_batches, Policy.BLOCK,
                                                      self._stop)
        self._packets: StageQueue[tuple[int, av.Packet]] = StageQueue(1024, Policy.BLOCK,
                                                                      self._stop)
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._file: FileSink | None = None
        self._packets_done = False
        self._planar_in = engine.colour_on_device and not (
            output is not None and output[1].side_by_side
        )
        self._planar_out = self._planar_in and publish is None and (
            output is not None and output[1].pix_fmt == "yuv420p"
        )

    # -- control ------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the source and the file, warm the engine up, and start the stage threads. A
        failure on the way closes what was opened (and removes an output that got no frame)."""
        container = self.source.open()
        video = container.streams.video[0]
        try:
            self._open_output(video)
        except BaseException:
            self._roll_back()
            raise
        total = video.frames or None if not self.source.kind.live else None
        self._bar = tqdm(total=total, unit="frame", disable=not self.progress, leave=False,
                         desc=Path(self.source.url).name[:30])
        self.stats = RunStats()
        for name, target in (("decode", self._decode), ("infer", self._infer),
                             ("output", self._output)):
            thread = threading.Thread(target=self._guard(target), name=f"hdm-{name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _open_output(self, video: av.VideoStream) -> None:
        width, height = video.codec_context.width, video.codec_context.height
        if width and height:
            self.engine.check_size(height, width)  # before anything is written
        if self.output is not None:
            path, settings = self.output
            if not self.source.kind.live and _same_file(Path(self.source.url), path):
                raise StreamerError(f"output {path} would overwrite the input")
            rate = video.average_rate or video.guessed_rate
            self._file = FileSink(path, settings, self.source.passthrough_streams(),
                                  Fraction(rate) if rate else None)
            self._file.open()
        if width and height:
            self.engine.warmup(height, width, self.batching.size)

    def _roll_back(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except StreamerError as error:
                log.warning("%s", error)
            if self._file.frames_written == 0:
                self._file.path.unlink(missing_ok=True)
            self._file = None
        self.source.close()

    def stop(self) -> None:
        """Drain: stop reading; what was read is still processed and written (a push consumer
        that has gone away is given up on after publish.DRAIN_GRACE_S)."""
        self.stats.interrupted = True
        self._drain.set()
        self.source.stop()

    def join(self) -> RunStats:
        """Wait for the run to end; re-raises the first stage error."""
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.2)
        self._bar.close()
        self.stats.finished = time.monotonic()
        self.stats.dropped_queue = self._frames.dropped
        self.stats.reconnects = self.source.reconnects
        self.stats.corrupt_packets = self.source.corrupt_packets
        self.stats.scene_cuts = self.engine.scene_cuts
        if self._errors:
            raise self._errors[0]
        return self.stats

    def run(self) -> RunStats:
        """start() and join(); Ctrl-C stops reading and finishes the output properly."""
        self.start()
        try:
            return self.join()
        except KeyboardInterrupt:
            log.warning("interrupted: finishing the frames already read")
            self.stop()
            return self.join()

    # -- stages -------------------------------------------------------------------------------
    def _guard(self, stage: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                stage()
            except Closed:
                pass
            except BaseException as error:  # noqa: BLE001 - re-raised from join()
                self._errors.append(error)
                self._stop.set()
                self.source.stop()
        return run

    def _decode(self) -> None:
        timer = self.stats.stages["decode"]
        on_packet = self._queue_packet if self._file is not None else None
        try:
            started = time.perf_counter()
            for frame in self.source.frames(on_packet=on_packet, planar=self._planar_in):
                timer.add(time.perf_counter() - started, 1)
                self.stats.frames_in += 1
                self._frames.put(frame)
                started = time.perf_counter()
        finally:
            self._frames.put(END)
            self._packets.put(END)

    def _queue_packet(self, packet: av.Packet) -> None:
        self._packets.put((packet.stream.index, packet))

    def _infer(self) -> None:
        carry: Frame | None = None
        in_flight: tuple[list[Frame], PendingBatch, float] | None = None
        overlap = self.batching.overlap and not self.source.kind.live
        try:
            while True:
                batch, carry, ended = self._next_batch(carry)
                batch = self._drop_stale(batch)
                if batch:
                    started = time.perf_counter()
                    pending = self.engine.submit(
                        [f.image for f in batch], self.source.stream_id, tags=batch[0].tags,
                        planar_out=self._planar_out and batch[0].planar,
                    )
                    if in_flight is not None:
                        self._collect(*in_flight)
                    in_flight = (batch, pending, time.perf_counter() - started)
                    if not overlap or len(self._frames) == 0:
                        self._collect(*in_flight)
                        in_flight = None
                if ended and carry is None:
                    if in_flight is not None:
                        self._collect(*in_flight)
                    return
        finally:
            self._results.put(END)

    def _collect(self, batch: list[Frame], pending: PendingBatch, submit_s: float) -> None:
        """Wait for a submitted batch and pass it on. The stage's time is what the thread
        spent submitting and waiting, not the overlap in between."""
        started = time.perf_counter()
        enhanced = pending.result()
        self.stats.stages["infer"].add(submit_s + time.perf_counter() - started, len(batch))
        self._results.put((batch, enhanced))

    def _next_batch(self, carry: Frame | None) -> tuple[list[Frame], Frame | None, bool]:
        """Up to ``size`` same-sized frames, waiting at most ``max_delay_ms`` after the first.

        Returns (batch, a frame of another size held for the next batch, input ended).
        """
        first = carry
        while first is None:
            item = self._frames.get(_POLL_S)
            if item is END:
                return [], None, True
            first = item if isinstance(item, Frame) else None
        batch = [first]
        deadline = time.monotonic() + self.batching.max_delay_ms / 1000
        while len(batch) < self.batching.size:
            item = self._frames.get(max(0.0, deadline - time.monotonic()))
            if item is None:
                break
            if item is END:
                return batch, None, True
            assert isinstance(item, Frame)
            if item.image.shape != first.image.shape or item.tags != first.tags:
                return batch, item, False
            batch.append(item)
        return batch, None, False

    def _drop_stale(self, batch: list[Frame]) -> list[Frame]:
        if not self.source.kind.live:
            return batch
        oldest_allowed = time.monotonic() - self.batching.latency_ms / 1000
        fresh = [f for f in batch if f.capture_time >= oldest_allowed]
        self.stats.dropped_stale += len(batch) - len(fresh)
        return fresh

    def _output(self) -> None:
        timer = self.stats.stages["output"]
        publisher = (Publisher.bind(self.publish, self._stop, self._drain) if self.publish
                     else None)
        try:
            while True:
                self._drain_packets(block=False)
                item = self._results.get(_POLL_S)
                if item is None:
                    continue
                if item is END:
                    break
                started = time.perf_counter()
                frames, images = item
                for frame, image in zip(frames, images, strict=True):
                    self._emit(frame, frame.with_image(image), publisher)
                timer.add(time.perf_counter() - started, len(frames))
            self._drain_packets(block=True)
        finally:
            failing = sys.exc_info()[1] is not None
            if publisher is not None:
                publisher.close(self.source.stream_id)
                self.stats.unsent = publisher.abandoned
            if self._file is not None:
                self._close_file(failing)

    def _close_file(self, failing: bool) -> None:
        """Close the output; while another error is on its way out, a failure to finish the
        file is logged instead of masking it."""
        assert self._file is not None
        try:
            self._file.close()
        except StreamerError as error:
            if not failing:
                raise
            log.warning("%s", error)

    def _emit(self, original: Frame, enhanced: Frame, publisher: Publisher | None) -> None:
        if self._file is not None:
            self._file.write(enhanced, original.image)
        if publisher is not None:
            publisher.send(enhanced)
        self.stats.latencies_s.append(time.monotonic() - original.capture_time)
        self.stats.flicker.update(original.image, enhanced.image)
        self.stats.frames_out += 1
        self._bar.update(1)

    def _drain_packets(self, *, block: bool) -> None:
        if self._file is None or self._packets_done:
            return
        while True:
            packet = self._packets.get(_POLL_S if block else 0.0)
            if packet is None:
                if block and not self._stop.is_set():
                    continue
                return
            if packet is END:
                self._packets_done = True
                return
            self._file.write_packet(*packet)


def _same_file(a: Path, b: Path) -> bool:
    """The same file, by inode: symbolic and hard links included (resolved paths miss the
    latter, and writing the output would destroy the input)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # the output does not exist yet
        return False
