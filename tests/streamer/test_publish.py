"""ZeroMQ output with real sockets on 127.0.0.1: message format, gaps, never blocking, lossless."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from streamer.engine import Engine
from streamer.errors import SinkError
from streamer.publish.publisher import Publisher, PublishSettings
from streamer.publish.subscriber import Subscriber
from streamer.runtime.batcher import BatchSettings
from streamer.runtime.pipeline import Pipeline
from streamer.sources.video import VideoSource
from tests.streamer.clips import decoded_pts, write_clip


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def publish_file(engine: Engine, clip: Path, settings: PublishSettings) -> Pipeline:
    pipeline = Pipeline(VideoSource(str(clip), stream_id="cam7"), engine, publish=settings,
                        batching=BatchSettings(size=2), progress=False)
    pipeline.start()
    return pipeline


def test_subscriber_gets_headers_pixels_and_the_end(classical_engine: Engine) -> None:
    endpoint = free_endpoint()
    # A real-time test source (30 frames over 1.2 s), so the subscription is in place early.
    source = VideoSource("lavfi:testsrc2=size=128x96:rate=25:duration=1.2,realtime",
                         stream_id="cam7")
    with Subscriber(endpoint, topic="cam7", hwm=100) as sub:
        pipeline = Pipeline(source, classical_engine, batching=BatchSettings(size=1),
                            publish=PublishSettings(endpoint, hwm=100), progress=False)
        pipeline.start()
        messages = []
        while (message := sub.recv(timeout_s=10)) is not None:
            messages.append(message)
            if message.end:
                break
        stats = pipeline.join()
    frames = [m for m in messages if not m.end]
    assert messages and messages[-1].end
    assert messages[-1].header["frames"] == stats.frames_out
    assert len(frames) >= 15
    header = frames[0].header
    assert frames[0].topic == "cam7"
    assert (header["v"], header["width"], header["height"], header["format"]) == (
        1, 128, 96, "rgb24")
    assert header["color"]["matrix"] in (1, 6) and header["time_base"] == [1, 25]
    assert header["task"] == "dehaze"  # the engine's task (--task auto: each frame's)
    assert header["publish_time"] >= header["capture_time"]
    assert frames[0].image is not None and frames[0].image.shape == (96, 128, 3)
    assert all(m.header["pts"] == m.header["seq"] for m in frames)  # one pts tick per frame
    seqs = [m.header["seq"] for m in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_stalled_subscriber_sees_gaps_and_never_blocks_the_publisher() -> None:
    from streamer.frames import ColorTags, Frame, Layout

    endpoint = free_endpoint()
    stop, connected = threading.Event(), threading.Event()
    image = np.zeros((480, 640, 3), np.uint8)
    results: dict[str, float] = {}

    def frame(seq: int) -> Frame:
        return Frame(image, Layout.RGB24, seq, None, seq, time.monotonic(), ColorTags())

    def publish() -> None:
        publisher = Publisher.bind(PublishSettings(endpoint, hwm=2), stop)
        seq = 0
        while not connected.is_set() and seq < 500:  # until the subscriber hears us
            publisher.send(frame(seq))
            seq += 1
            time.sleep(0.01)
        started = time.monotonic()
        for _ in range(400):  # the subscriber reads nothing meanwhile: 370 MB offered
            publisher.send(frame(seq))
            seq += 1
        results["seconds"] = time.monotonic() - started
        results["sent"] = seq
        publisher.close("stream0")

    with Subscriber(endpoint, hwm=2) as sub:
        thread = threading.Thread(target=publish)
        thread.start()
        first = sub.recv(timeout_s=10)
        assert first is not None
        connected.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the publisher blocked on a stalled subscriber"
        assert results["seconds"] < 20
        received = []
        ended = False
        while (message := sub.recv(timeout_s=1)) is not None:
            if message.end:
                ended = True
                break
            received.append(message.header["seq"])
    # How many of the 400 frames the kernel's loopback buffers absorb depends on the machine's
    # load (the old "> 100 missed" failed 4 runs in 6 on a quiet machine): what must hold is
    # that frames were dropped for this subscriber alone and that it counted each gap.
    assert received and sub.missed > 0
    # missed counts from seq 0, up to the frames the end message announces
    assert 1 + len(received) + sub.missed == (results["sent"] if ended else received[-1] + 1)


def test_push_mode_is_lossless_for_a_slow_consumer(
    tmp_path: Path, classical_engine: Engine
) -> None:
    clip = tmp_path / "in.mp4"
    write_clip(clip, frames=20, audio=False)
    endpoint = free_endpoint()
    pipeline = publish_file(classical_engine, clip,
                            PublishSettings(endpoint, mode="push", hwm=1, payload="jpeg"))
    with Subscriber(endpoint, mode="push", hwm=1) as sub:
        seqs = []
        for message in sub:
            seqs.append(message.header["seq"])
            assert message.header["format"] == "jpeg" and message.image is not None
            time.sleep(0.02)  # slower than the pipeline
        pipeline.join()
    assert seqs == list(range(20)) and sub.missed == 0
    assert len(decoded_pts(clip)) == 20


def test_binding_a_bad_endpoint_is_a_clear_error() -> None:
    with pytest.raises(SinkError, match="cannot bind"):
        Publisher.bind(PublishSettings("tcp://256.0.0.1:1"), threading.Event())
    with pytest.raises(SinkError, match="cannot bind"):
        Publisher.bind(PublishSettings("nonsense://here"), threading.Event())


def test_sockets_do_not_leak(tmp_path: Path, classical_engine: Engine) -> None:
    clip = tmp_path / "in.mp4"
    write_clip(clip, frames=3, audio=False)
    endpoint = free_endpoint()
    publish_file(classical_engine, clip, PublishSettings(endpoint)).join()
    # The port is released (ZeroMQ unbinds in its I/O thread, so allow it a moment).
    check: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
    try:
        deadline = time.monotonic() + 3.0
        while True:
            try:
                check.bind(endpoint)
                break
            except zmq.ZMQError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        check.close(linger=0)
