"""Many sessions through one engine: shared batches, per-stream state, errors and stopping."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from streamer.engine import Engine
from streamer.errors import RunErrors, SinkError, StreamerError
from streamer.frames import RGB, Passthrough, StreamInfo
from streamer.publish.publisher import PublishSettings
from streamer.queues import Policy
from streamer.runtime.batcher import BatchSettings
from streamer.runtime.pipeline import Pipeline
from streamer.runtime.server import Server
from streamer.runtime.session import StreamSession
from streamer.sinks.base import Output, Sink
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileSink
from streamer.sources.video import VideoSource
from tests.streamer.clips import audio_packets, decoded_pts, write_clip
from tests.streamer.engines import RecordingEngine

FRAMES = 16


class BrokenSink:
    """An output that fails at its ``fail_at``-th frame (a disk that fills, say)."""

    name = "broken"
    accepts = RGB
    policy = Policy.BLOCK
    wants_packets = False
    unsent = 0

    def __init__(self, message: str, fail_at: int) -> None:
        self.message, self.fail_at = message, fail_at
        self.written = 0
        self.closed_with: BaseException | None | str = "open"

    def open(self, info: StreamInfo) -> None:
        """Nothing to open."""

    def write(self, output: Output) -> None:
        self.written += 1
        if self.written == self.fail_at:
            raise SinkError(self.message)

    def write_packet(self, packet: Passthrough) -> None:
        """No packets."""

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        self.closed_with = error


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def clip(path: Path, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (96, 128, 3))
    images = [np.clip(base + rng.integers(-4, 5, base.shape) + 3 * i, 0, 255).astype(np.uint8)
              for i in range(FRAMES)]
    return write_clip(path, frames=FRAMES, images=images)


def test_two_files_share_batches_and_each_comes_out_as_if_run_alone(
    tmp_path: Path, classical_engine: Engine, recording_engine: RecordingEngine
) -> None:
    sources = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    written = [clip(path, seed) for seed, path in enumerate(sources)]
    alone = []
    for path in sources:
        out = path.with_name(f"alone-{path.name}")
        Pipeline(VideoSource(str(path)), classical_engine,
                 output=(out, EncodeSettings()), batching=BatchSettings(size=4),
                 progress=False).run()
        alone.append(decoded(out))

    server = Server(recording_engine, BatchSettings(size=4, max_delay_ms=200))
    outputs = [path.with_name(f"together-{path.name}") for path in sources]
    for index, (path, out) in enumerate(zip(sources, outputs, strict=True)):
        source = VideoSource(str(path), stream_id=f"cam{index}")
        server.add(StreamSession(source, [FileSink(out)], batching=server.batching))
    server.start()
    server.join()
    assert max(s.streams for s in recording_engine.submitted) == 2, \
        "no batch held frames of both streams"
    for out, src, pts, reference in zip(outputs, sources, written, alone, strict=True):
        assert decoded_pts(out) == pts
        assert audio_packets(out) == audio_packets(src)
        # Each stream keeps its own temporal state: mixing them would move pixels by far more.
        assert np.abs(decoded(out).astype(int) - reference).max() <= 2


def test_every_stage_error_surfaces_and_the_other_outputs_are_finished(
    tmp_path: Path, classical_engine: Engine
) -> None:
    server = Server(classical_engine, BatchSettings(size=2))
    files: list[Path] = []
    broken: list[BrokenSink] = []
    for index in range(2):
        src = tmp_path / f"in{index}.mkv"
        write_clip(src, frames=FRAMES, audio=False)
        files.append(tmp_path / f"out{index}.mkv")
        broken.append(BrokenSink(f"disk {index} is full", fail_at=4 + index))
        sinks: list[Sink] = [FileSink(files[-1]), broken[-1]]
        server.add(StreamSession(VideoSource(str(src)), sinks, batching=server.batching))
    server.start()
    with pytest.raises(RunErrors) as caught:
        server.join()
    assert sorted(str(e) for e in caught.value.errors) == ["disk 0 is full", "disk 1 is full"]
    assert "disk 0 is full" in str(caught.value) and "disk 1 is full" in str(caught.value)
    for path, sink in zip(files, broken, strict=True):
        assert 0 < len(decoded_pts(path)) < FRAMES  # stopped early, but with its trailer
        assert isinstance(sink.closed_with, SinkError)


def test_a_failing_stream_does_not_stop_another(tmp_path: Path, classical_engine: Engine) -> None:
    server = Server(classical_engine, BatchSettings(size=2))
    good = tmp_path / "good.mkv"
    for name, sinks in (("bad", [BrokenSink("gone", fail_at=2)]), ("good", [FileSink(good)])):
        src = tmp_path / f"{name}.mkv"
        write_clip(src, frames=FRAMES, audio=False)
        server.add(StreamSession(VideoSource(str(src), stream_id=name), sinks,
                                 batching=server.batching))
    server.start()
    with pytest.raises(SinkError, match="gone"):
        server.join()
    assert len(decoded_pts(good)) == FRAMES


def test_abort_reaches_a_push_send_waiting_for_a_consumer(
    tmp_path: Path, classical_engine: Engine
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    src = tmp_path / "in.mkv"
    write_clip(src, frames=FRAMES, audio=False)
    pipeline = Pipeline(VideoSource(str(src)), classical_engine,
                        publish=PublishSettings(endpoint, mode="push"), progress=False)
    pipeline.start()
    time.sleep(0.5)  # the push sink now waits: nobody pulls
    stopper = threading.Timer(0.1, pipeline.server.abort, [StreamerError("stopped by test")])
    stopper.start()
    started = time.monotonic()
    with pytest.raises(StreamerError, match="stopped by test"):
        pipeline.join()
    assert time.monotonic() - started < 3
