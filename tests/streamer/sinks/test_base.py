"""The worker that gives each output its own thread and queue (streamer/sinks/base.py), around
an output that records what happens to it."""

from __future__ import annotations

import threading
import time

import av
import pytest

from streamer.errors import SinkError
from streamer.frames import ANY, Passthrough, StreamInfo
from streamer.queues import Policy
from streamer.sinks.base import Output, SinkWorker
from tests.streamer.pictures import info_for, picture


class Recording:
    """An output that records its calls; ``fail`` raises at that write (or at open)."""

    name = "recording"
    accepts = ANY
    unsent = 0

    def __init__(self, *, policy: Policy = Policy.BLOCK, packets: bool = False,
                 fail: int | str | None = None, write_s: float = 0.0) -> None:
        self.policy, self.wants_packets, self.fail, self.write_s = policy, packets, fail, write_s
        self.thread: threading.Thread | None = None
        self.seqs: list[int] = []
        self.packets = 0
        self.idles = 0
        self.closed: list[BaseException | None] = []

    def open(self, info: StreamInfo) -> None:
        self.thread = threading.current_thread()
        if self.fail == "open":
            raise SinkError("cannot open")

    def write(self, output: Output) -> None:
        if len(self.seqs) == self.fail:
            raise SinkError("disk full")
        time.sleep(self.write_s)
        self.seqs.append(output.enhanced.seq)

    def write_packet(self, packet: Passthrough) -> None:
        self.packets += 1

    def idle(self) -> None:
        self.idles += 1

    def close(self, error: BaseException | None = None) -> None:
        self.closed.append(error)


def output(seq: int) -> Output:
    frame = picture(seq)
    return Output(frame, frame)


def worker(sink: Recording, capacity: int = 8) -> tuple[SinkWorker, list[BaseException]]:
    """The output's worker, and the list its errors are handed to (the session's part)."""
    errors: list[BaseException] = []
    return SinkWorker(sink, capacity, threading.Event(), errors.append), errors


def test_an_output_runs_in_its_own_thread_and_gets_everything_in_order() -> None:
    sink = Recording()
    w, errors = worker(sink, capacity=2)  # BLOCK: a full queue waits, nothing is lost
    w.open(info_for())
    for seq in range(20):
        w.put(output(seq))
    w.finish()
    assert w.wait(5.0)
    assert sink.thread is not threading.current_thread()
    assert sink.seqs == list(range(20)) and sink.closed == [None] and errors == []
    assert w.written == 20 and w.latency.total == 20 and w.dropped == 0


def test_a_slow_live_output_drops_its_oldest_frames_and_counts_them() -> None:
    sink = Recording(policy=Policy.DROP_OLDEST, write_s=0.05)
    w, errors = worker(sink, capacity=2)
    w.open(info_for())
    for seq in range(20):
        w.put(output(seq))  # never waits
    w.finish()
    assert w.wait(5.0)
    assert sink.seqs[-1] == 19  # the newest is kept
    assert w.dropped > 0 and len(sink.seqs) + w.dropped == 20 and errors == []


def test_a_failure_to_open_is_raised_to_the_caller_and_the_thread_ends() -> None:
    sink = Recording(fail="open")
    w, errors = worker(sink)
    with pytest.raises(SinkError, match="cannot open"):
        w.open(info_for())
    assert w.wait(1.0) and sink.closed == [] and errors == []


def test_a_failing_write_is_handed_on_and_the_output_closed_with_it() -> None:
    sink = Recording(fail=3)
    w, errors = worker(sink)
    w.open(info_for())
    for seq in range(6):
        w.put(output(seq))
    w.finish()
    assert w.wait(5.0)
    (error,) = errors
    assert str(error) == "disk full" and sink.closed == [error]
    assert sink.seqs == [0, 1, 2]  # what was queued after the failure is discarded


def test_packets_reach_only_an_output_that_copies_them() -> None:
    packet = Passthrough(1, av.Packet(b"\x00\x01"))
    copying, plain = Recording(packets=True), Recording()
    for w, _ in (worker(copying), worker(plain)):
        w.open(info_for())
        w.put(packet)
        w.finish()
        assert w.wait(5.0)
    assert (copying.packets, plain.packets) == (1, 0)


def test_an_output_with_nothing_to_write_is_kept_alive() -> None:
    sink = Recording()
    w, errors = worker(sink)
    w.open(info_for())
    time.sleep(0.3)  # six polls of 50 ms
    w.finish()
    assert w.wait(5.0)
    assert sink.idles >= 2 and sink.closed == [None] and errors == []
