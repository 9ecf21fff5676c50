"""The batcher alone (streamer/runtime/batcher.py), on lanes of frames made in memory: a batch
goes when full or at its deadline, never holds more than ``size`` frames, takes streams in turn,
keeps one shape per batch, and drops what is stale."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from streamer.frames import Frame
from streamer.queues import END, Doorbell, Policy, StageQueue
from streamer.runtime.batcher import Batcher, BatchSettings
from tests.streamer.pictures import picture


@dataclass(eq=False)
class Lane:
    """A stream as the batcher sees it: a queue of decoded frames, and which are stale."""

    frames: StageQueue[Frame]
    too_old: set[int] = field(default_factory=set)  # seqs the stream says are stale

    def stale(self, frame: Frame) -> bool:
        return frame.seq in self.too_old


class Rig:
    """A batcher and the lanes it reads, sharing one doorbell."""

    def __init__(self, size: int = 4, max_delay_ms: float = 40.0) -> None:
        self.doorbell = Doorbell()
        self.stop = threading.Event()
        self.batcher: Batcher[Lane] = Batcher(
            BatchSettings(size=size, max_delay_ms=max_delay_ms), self.doorbell, self.stop)

    def lane(self, frames: Iterable[Frame] = (), *, end: bool = False) -> Lane:
        lane = Lane(StageQueue(64, Policy.BLOCK, self.stop, self.doorbell))
        for frame in frames:
            lane.frames.put(frame)
        if end:
            lane.frames.put(END)
        self.batcher.add(lane)
        return lane

    def next_timed(self) -> tuple[list[tuple[Lane, Frame]], float]:
        started = time.monotonic()
        found = self.batcher.next()
        return found.batch, time.monotonic() - started


def seqs(batch: list[tuple[Lane, Frame]]) -> list[int]:
    return [frame.seq for _, frame in batch]


def test_a_full_batch_goes_at_once_without_waiting_for_its_deadline() -> None:
    rig = Rig(size=4, max_delay_ms=5_000)
    rig.lane(picture(i) for i in range(4))
    batch, took = rig.next_timed()
    assert seqs(batch) == [0, 1, 2, 3]
    assert took < 1.0  # the deadline was 5 s away


def test_a_short_batch_waits_for_its_deadline_then_goes_short() -> None:
    rig = Rig(size=4, max_delay_ms=200)
    rig.lane(picture(i) for i in range(2))
    batch, took = rig.next_timed()
    assert seqs(batch) == [0, 1]
    assert 0.2 <= took < 2.0


def test_a_frame_that_comes_before_the_deadline_joins_the_batch() -> None:
    rig = Rig(size=4, max_delay_ms=500)
    lane = rig.lane([picture(0)])
    later = threading.Timer(0.1, lane.frames.put, [picture(1)])
    later.start()
    try:
        batch, took = rig.next_timed()
    finally:
        later.cancel()
    assert seqs(batch) == [0, 1]
    assert took >= 0.5  # still short of size 4: it waited for the deadline


def test_no_batch_holds_more_than_size_frames_and_none_is_lost_or_reordered() -> None:
    rig = Rig(size=4, max_delay_ms=20)
    rig.lane(picture(i) for i in range(10))
    batches = [seqs(rig.batcher.next().batch) for _ in range(3)]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_streams_are_taken_in_turn_so_a_busy_one_cannot_starve_another() -> None:
    rig = Rig(size=4, max_delay_ms=20)
    busy = rig.lane(picture(i, stream_id="busy") for i in range(12))
    quiet = rig.lane(picture(i, stream_id="quiet") for i in range(2))
    batch = rig.batcher.next().batch
    assert [lane for lane, _ in batch].count(quiet) == 2
    assert [f.seq for lane, f in batch if lane is busy] == [0, 1]  # in order


def test_a_frame_of_another_shape_is_held_and_starts_a_later_batch() -> None:
    rig = Rig(size=4, max_delay_ms=20)
    small, large = (96, 128), (144, 256)
    a = rig.lane([picture(0, size=small), picture(1, size=large), picture(2, size=large)])
    rig.lane([picture(0, size=small), picture(1, size=small)])  # b
    first = rig.batcher.next().batch
    second = rig.batcher.next().batch
    assert {f.image.shape for _, f in first} == {(96, 128, 3)}
    assert [(lane is a, f.seq) for lane, f in first] == [(True, 0), (False, 0), (False, 1)]
    assert [(lane is a, f.seq) for lane, f in second] == [(True, 1), (True, 2)]


def test_stale_frames_never_reach_a_batch() -> None:
    rig = Rig(size=4, max_delay_ms=20)
    rig.lane((picture(i) for i in range(6)), end=True).too_old.update({1, 2, 4})
    assert seqs(rig.batcher.next().batch) == [0, 3, 5]


def test_an_ended_stream_is_reported_once_after_its_last_frame() -> None:
    rig = Rig(size=4, max_delay_ms=20)
    lane = rig.lane([picture(0)], end=True)
    first = rig.batcher.next()
    assert seqs(first.batch) == [0] and first.ended == [lane]
    assert rig.batcher.active == 0
    second = rig.batcher.next()  # no lanes left: returns at once, empty
    assert second.batch == [] and second.ended == []


@pytest.mark.parametrize("stop_after_s", [0.0, 0.1])
def test_stopping_ends_a_wait_for_the_first_frame(stop_after_s: float) -> None:
    rig = Rig(size=4, max_delay_ms=20)
    rig.lane()  # open, but nothing decoded yet
    stopper = threading.Timer(stop_after_s, rig.stop.set)
    stopper.start()
    batch, took = rig.next_timed()
    stopper.join()
    assert batch == [] and took < 2.0
