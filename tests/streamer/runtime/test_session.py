"""One stream's session alone (streamer/runtime/session.py), driven as the server's engine
worker drives it: a real clip and real engines decide the layouts, and the test hands each frame
back "enhanced" itself, so what reaches every output can be checked exactly."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from streamer.engine import Engine, EngineSettings
from streamer.errors import SinkError, SourceError
from streamer.frames import ANY, RGB, Frame, Layout, Passthrough, StreamInfo
from streamer.queues import END, Doorbell, Policy
from streamer.runtime.session import StreamSession
from streamer.sinks.base import Output, Sink
from streamer.sources.video import VideoSource
from tests.streamer.clips import write_clip

FRAMES = 8


class Collecting:
    """An output that keeps what it is given."""

    policy = Policy.BLOCK
    unsent = 0

    def __init__(self, name: str, accepts: frozenset[Layout] = ANY, *, packets: bool = False,
                 fail_open: bool = False, fail_at: int | None = None) -> None:
        self.name, self.accepts, self.wants_packets = name, accepts, packets
        self.fail_open, self.fail_at = fail_open, fail_at
        self.info: StreamInfo | None = None
        self.outputs: list[Output] = []
        self.packets: list[Passthrough] = []
        self.closed: list[BaseException | None] = []

    def open(self, info: StreamInfo) -> None:
        if self.fail_open:
            raise SinkError(f"{self.name} cannot open")
        self.info = info

    def write(self, output: Output) -> None:
        if len(self.outputs) == self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.outputs.append(output)

    def write_packet(self, packet: Passthrough) -> None:
        self.packets.append(packet)

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        self.closed.append(error)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("session") / "in.mp4"
    write_clip(path, frames=FRAMES)  # 128x96 yuv420p with AAC audio
    return path


def opened(clip: Path, engine: Engine, sinks: Sequence[Sink]) -> StreamSession:
    session = StreamSession(VideoSource(str(clip)), sinks)
    session.open(engine, Doorbell())
    return session


def decoded(session: StreamSession) -> list[Frame]:
    """Start decoding and take every frame from the session's queue, as the batcher does."""
    session.start()
    frames = []
    while (item := session.frames.get(5.0)) is not END:
        assert item is not None, "no frame within 5 s"
        frames.append(item)
    return frames


def finished(session: StreamSession) -> None:
    session.end_of_input()
    assert session.join(5.0), "the session did not end"


def test_planes_travel_both_ways_when_the_engine_and_every_output_take_them(
    clip: Path, classical_engine: Engine
) -> None:
    assert classical_engine.planes_only_through  # the CPU's planes path (a reduced size)
    session = opened(clip, classical_engine, [Collecting("a"), Collecting("b")])
    assert Layout.I420 in session.in_layouts and Layout.I420 in session.out_layouts
    frames = decoded(session)
    assert {f.layout for f in frames} == {Layout.I420}
    assert {session.out_layout(f) for f in frames} == {Layout.I420}
    finished(session)


def test_one_rgb_output_keeps_planes_from_an_engine_that_takes_them_only_to_give_them_back(
    clip: Path, classical_engine: Engine
) -> None:
    session = opened(clip, classical_engine, [Collecting("planes"), Collecting("rgb", RGB)])
    assert session.in_layouts == session.out_layouts == {Layout.RGB24}
    frames = decoded(session)
    assert {f.layout for f in frames} == {Layout.RGB24}
    assert {session.out_layout(f) for f in frames} == {None}  # RGB of the input's depth
    finished(session)


def test_an_engine_that_takes_rgb_only_gets_rgb_whatever_the_outputs_take(clip: Path) -> None:
    full = Engine.build(EngineSettings(task="dehaze",
                                       model="dcp", device="cpu", inference_size="full"))
    assert full.accepts == RGB
    session = opened(clip, full, [Collecting("planes")])
    assert session.in_layouts == {Layout.RGB24}
    assert {f.layout for f in decoded(session)} == {Layout.RGB24}
    finished(session)


def test_every_enhanced_frame_reaches_every_output_in_order_with_its_original(
    clip: Path, classical_engine: Engine
) -> None:
    outputs = [Collecting("first", RGB, packets=True), Collecting("second", RGB)]
    session = opened(clip, classical_engine, outputs)
    assert all(o.info is session.info for o in outputs)  # opened with what the source said
    frames = decoded(session)
    for frame in frames:
        session.deliver(frame, 255 - frame.image, frame.layout)
    finished(session)
    assert len(frames) == FRAMES and session.stats.frames_out == FRAMES
    for output in outputs:
        assert [o.enhanced.seq for o in output.outputs] == list(range(FRAMES))
        assert [o.enhanced.pts for o in output.outputs] == [f.pts for f in frames]
        for sent, frame in zip(output.outputs, frames, strict=True):
            assert sent.original is frame
            assert np.array_equal(sent.enhanced.image, 255 - frame.image)
        assert output.closed == [None]  # finished, not failed
    assert outputs[0].packets, "the audio packets reach the output that copies them"
    assert outputs[1].packets == []


def test_an_output_that_cannot_be_written_aborts_the_session_with_a_sink_error(
    clip: Path, classical_engine: Engine
) -> None:
    full, other = Collecting("full disk", RGB, fail_at=3), Collecting("other", RGB)
    session = opened(clip, classical_engine, [full, other])
    for frame in decoded(session):
        session.deliver(frame, frame.image, frame.layout)
    finished(session)
    (error,) = session.errors
    assert isinstance(error, SinkError) and isinstance(error.__cause__, OSError)
    assert "No space left on device" in str(error)
    assert full.closed == [error.__cause__]  # the output is closed with its own failure
    assert session.stopping.abort.is_set()
    assert len(full.outputs) == 3  # nothing after the failure
    # The other output is closed once: as failed, or normally if it had written everything
    # before the abort (its own thread runs ahead of the failing one).
    assert len(other.closed) == 1


def test_an_output_that_cannot_open_closes_the_ones_already_open(
    clip: Path, classical_engine: Engine
) -> None:
    good, bad = Collecting("good"), Collecting("bad", fail_open=True)
    session = StreamSession(VideoSource(str(clip)), [good, bad])
    with pytest.raises(SinkError, match="bad cannot open"):
        session.open(classical_engine, Doorbell())
    assert good.info is not None and len(good.closed) == 1


def test_a_session_needs_an_output(clip: Path) -> None:
    with pytest.raises(SourceError, match="no outputs"):
        StreamSession(VideoSource(str(clip)), [])
