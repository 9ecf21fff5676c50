"""Queue policies: files never lose a frame, live sources drop the oldest and count it."""

from __future__ import annotations

import threading

import pytest

from streamer.queues import END, Closed, Policy, StageQueue


def test_block_policy_keeps_everything_in_order() -> None:
    stop = threading.Event()
    queue: StageQueue[int] = StageQueue(3, Policy.BLOCK, stop)
    received: list[object] = []

    def consume() -> None:
        while (item := queue.get(1.0)) is not END:
            received.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(200):
        queue.put(i)
    queue.put(END)
    consumer.join(5)
    assert received == list(range(200)) and queue.dropped == 0


def test_drop_oldest_keeps_the_newest_and_counts() -> None:
    queue: StageQueue[int] = StageQueue(3, Policy.DROP_OLDEST, threading.Event())
    for i in range(10):
        queue.put(i)
    queue.put(END)
    items = [queue.get(0) for _ in range(4)]
    assert items == [7, 8, 9, END] and queue.dropped == 7


def test_a_blocked_producer_is_released_by_stop() -> None:
    stop = threading.Event()
    queue: StageQueue[int] = StageQueue(1, Policy.BLOCK, stop)
    queue.put(1)
    stop.set()
    with pytest.raises(Closed):
        queue.put(2)
    queue.put(END)  # the end marker always fits


def test_get_times_out_with_none() -> None:
    assert StageQueue(1, Policy.BLOCK, threading.Event()).get(0.01) is None
