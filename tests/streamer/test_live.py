"""A live UDP MPEG-TS stream made inside the test that stops and restarts: the pipeline
reconnects and goes on."""

from __future__ import annotations

import socket
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamer.engine import Engine
from streamer.runtime.batcher import BatchSettings
from streamer.runtime.pipeline import Pipeline
from streamer.sinks.encoder import EncodeSettings
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


def send_burst(url: str, first: int, *, audio: bool = False) -> None:
    """Real-time MPEG-TS over UDP: H.264 with a keyframe every 5 frames (and AAC). Each burst
    restarts its timestamps at 0, as a restarted camera does."""
    with av.open(url, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25,
                                      options={"g": "5", "tune": "zerolatency"})
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        sound = container.add_stream("aac", rate=48_000, layout="mono") if audio else None
        for i in range(BURST):
            frame = av.VideoFrame.from_ndarray(moving_square(first + i, 96, 128), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
            if sound is not None:  # 40 ms of tone per frame
                chunk = av.AudioFrame.from_ndarray(
                    np.full((1, 1920), 0.1, np.float32), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48_000, i * 1920
                chunk.time_base = Fraction(1, 48_000)
                container.mux(sound.encode(chunk))
            time.sleep(0.04)
        container.mux(stream.encode())
        if sound is not None:
            container.mux(sound.encode())


def udp_recording(port: int, output: Path, engine: Engine) -> Pipeline:
    """A pipeline recording what arrives on a UDP port, reconnecting quickly after silence."""
    source = VideoSource(
        f"udp://127.0.0.1:{port}",
        reconnect=ReconnectPolicy(watchdog_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.4),
    )
    return Pipeline(source, engine, output=(output, EncodeSettings()),
                    batching=BatchSettings(size=1, latency_ms=2000, queue_batches=16),
                    progress=False)


@pytest.mark.slow
def test_udp_stream_that_stops_and_restarts_is_followed(
    tmp_path: Path, classical_engine: Engine
) -> None:
    port = free_udp_port()
    output = tmp_path / "live.mkv"
    pipeline = udp_recording(port, output, classical_engine)

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


@pytest.mark.slow
def test_a_live_recording_keeps_its_audio_and_the_real_length_of_an_outage(
    tmp_path: Path, classical_engine: Engine
) -> None:
    port = free_udp_port()
    output = tmp_path / "recording.mkv"
    pipeline = udp_recording(port, output, classical_engine)
    spans: list[float] = []

    def produce() -> None:
        target = f"udp://127.0.0.1:{port}?pkt_size=1316"
        started = time.monotonic()
        send_burst(target, 0, audio=True)
        time.sleep(3.0)  # the outage
        send_burst(target, BURST, audio=True)
        spans.append(time.monotonic() - started)

    producer = threading.Thread(target=produce)
    producer.start()
    opener = threading.Thread(target=pipeline.start)
    opener.start()
    producer.join(timeout=30)
    opener.join(timeout=10)
    time.sleep(1.0)
    pipeline.stop()
    pipeline.join()
    with av.open(str(output)) as container:
        video = [f.time for f in container.decode(video=0) if f.time is not None]
    with av.open(str(output)) as container:
        assert container.streams.audio, "the recording has no sound"
        audio = [p for p in container.demux(audio=0) if p.size]
    assert len(audio) > 20
    # Both bursts restart their pts at 0: without the wall clock the outage would vanish and
    # the second burst would land on (or before) the first.
    real = spans[0]
    assert video == sorted(video)
    assert video[-1] - video[0] > 0.8 * real, (video[-1] - video[0], real)
    gaps = np.diff(video)
    assert gaps.max() > 2.0  # the outage is there, as a gap


def test_inputs_are_classified_by_form() -> None:
    assert classify("rtsp://cam/1") is SourceKind.NETWORK
    assert classify("srt://host:9000") is SourceKind.NETWORK
    assert classify("/dev/video0") is SourceKind.CAMERA
    assert classify("lavfi:testsrc2") is SourceKind.LAVFI
    assert classify("clip.mp4") is SourceKind.FILE
    assert SourceKind.NETWORK.live and SourceKind.CAMERA.live
    assert not SourceKind.LAVFI.live and not SourceKind.FILE.live
