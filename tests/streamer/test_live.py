"""A live UDP MPEG-TS stream made inside the test that stops and restarts: the pipeline
reconnects and goes on."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import av
import pytest

from streamer.batcher import BatchSettings
from streamer.engine import Engine
from streamer.pipeline import Pipeline
from streamer.sinks.av_output import EncodeSettings
from streamer.sources.video import (
    ReconnectPolicy,
    SourceKind,
    VideoSource,
    classify,
)
from tests.streamer.clips import moving_square

BURST = 40  # frames per burst, sent at 25 fps


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def send_burst(url: str, first: int) -> None:
    """Real-time MPEG-TS over UDP: H.264 with a keyframe every 5 frames."""
    with av.open(url, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25,
                                      options={"g": "5", "tune": "zerolatency"})
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for i in range(first, first + BURST):
            frame = av.VideoFrame.from_ndarray(moving_square(i, 96, 128), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
            time.sleep(0.04)
        container.mux(stream.encode())


@pytest.mark.slow
def test_udp_stream_that_stops_and_restarts_is_followed(
    tmp_path: Path, classical_engine: Engine
) -> None:
    port = free_udp_port()
    source = VideoSource(
        f"udp://127.0.0.1:{port}",
        reconnect=ReconnectPolicy(watchdog_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.4),
    )
    output = tmp_path / "live.mkv"
    pipeline = Pipeline(source, classical_engine, output=(output, EncodeSettings()),
                        batching=BatchSettings(size=1, latency_ms=2000), progress=False)

    def produce() -> None:
        target = f"udp://127.0.0.1:{port}?pkt_size=1316"
        send_burst(target, 0)
        time.sleep(2.5)  # silence: longer than the watchdog
        send_burst(target, BURST)

    producer = threading.Thread(target=produce)
    producer.start()
    started = time.monotonic()
    opener = threading.Thread(target=pipeline.start)  # start() blocks until data arrives
    opener.start()
    producer.join(timeout=30)
    opener.join(timeout=10)
    time.sleep(1.0)
    pipeline.stop()
    stats = pipeline.join()
    assert time.monotonic() - started < 30
    assert stats.reconnects >= 1
    assert stats.frames_out > BURST  # frames from both bursts
    with av.open(str(output)) as container:
        assert len(list(container.decode(video=0))) == stats.frames_out


def test_inputs_are_classified_by_form() -> None:
    assert classify("rtsp://cam/1") is SourceKind.NETWORK
    assert classify("srt://host:9000") is SourceKind.NETWORK
    assert classify("/dev/video0") is SourceKind.CAMERA
    assert classify("lavfi:testsrc2") is SourceKind.LAVFI
    assert classify("clip.mp4") is SourceKind.FILE
    assert SourceKind.NETWORK.live and SourceKind.CAMERA.live
    assert not SourceKind.LAVFI.live and not SourceKind.FILE.live
