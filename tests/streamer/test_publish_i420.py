"""The ``i420`` ZeroMQ payload: YUV planes on the wire, so that a CPU run whose outputs all take
planes never makes an RGB frame (issue 18: the live path had paid for RGB at full resolution)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streamer.engine import Engine, EngineSettings
from streamer.errors import MessageError
from streamer.frames import ColorTags, Frame, Layout
from streamer.media.convert import i420_image, i420_to_rgb
from streamer.publish.publisher import PublishSettings
from streamer.publish.subscriber import Subscriber
from streamer.publish.wire import Message, encode_payload
from tests.streamer.clips import write_clip
from tests.streamer.engines import RecordingEngine
from tests.streamer.test_publish import free_endpoint, publish_file

TAGS = ColorTags(matrix=1, range=1)


def message_parts(width: int, height: int, payload: bytes | memoryview) -> list[bytes]:
    header = {"v": 1, "seq": 0, "width": width, "height": height, "format": "i420",
              "color": TAGS.as_dict()}
    return [b"cam", json.dumps(header).encode(), bytes(payload)]


def test_planes_go_over_the_wire_as_they_are() -> None:
    planes = np.random.default_rng(1).integers(0, 256, (6, 6), dtype=np.uint8)  # 6x4 picture
    fmt, payload = encode_payload(planes, Layout.I420, "i420", 90)
    message = Message.parse(message_parts(6, 4, payload))
    assert fmt == "i420" and message.image is not None
    assert np.array_equal(message.image, planes)
    assert message.color_tags == TAGS


def test_a_malformed_i420_message_is_refused() -> None:
    with pytest.raises(MessageError, match="even sides"):
        Message.parse(message_parts(5, 4, bytes(30)))
    with pytest.raises(MessageError, match="36 bytes, got 35"):
        Message.parse(message_parts(6, 4, bytes(35)))
    with pytest.raises(MessageError, match="cannot be sent as a i420"):
        encode_payload(np.zeros((4, 6, 3), np.uint8), Layout.RGB24, "i420", 90)


def test_rgb_becomes_planes_in_its_own_colours_odd_sides_padded() -> None:
    # Greys (no chroma for swscale's subsampling filter to spread), a 7x5 picture: padded to
    # 8x6 by a repeated row and column.
    grey = (np.arange(35, dtype=np.uint8).reshape(5, 7) * 6 + 20)[..., None].repeat(3, 2)
    planes = i420_image(Frame(grey, Layout.RGB24, 0, Fraction(1, 25), 0, 0.0, TAGS))
    assert planes.shape == (9, 8)
    limited = 16 + grey[..., 0].astype(float) * 219 / 255
    assert np.abs(planes[:5, :7] - limited).max() <= 1
    assert np.array_equal(planes[5, :7], planes[4, :7]) and np.array_equal(planes[:6, 7],
                                                                          planes[:6, 6])
    back = i420_to_rgb(planes, TAGS).astype(int)
    assert np.abs(back[:5, :7] - grey).max() <= 2


def received(engine: Engine, clip: Path, payload: str) -> list[Message]:
    endpoint = free_endpoint()
    pipeline = publish_file(engine, clip, PublishSettings(endpoint, mode="push", hwm=2,
                                                          payload=payload))  # type: ignore[arg-type]
    with Subscriber(endpoint, mode="push", hwm=2) as sub:
        messages = list(sub)
        pipeline.join()
    return messages


def test_a_run_publishing_planes_never_converts_to_rgb(tmp_path: Path) -> None:
    """Every frame arrives as I420 by the CPU's planes path (the engine given planes and
    returning planes), and the picture is the one the RGB payload carries, within what the
    two paths' own conversions differ by."""
    clip = tmp_path / "in.mp4"
    write_clip(clip, frames=12, size=(96, 128), audio=False)
    engine = RecordingEngine(Engine.build(EngineSettings(task="dehaze",
        model="hdm-s", device="cpu", backend="eager", inference_size=48)))
    planes = received(engine, clip, "i420")
    assert engine.travelled(engine.submitted[-1].states[0]) == {(Layout.I420, Layout.I420)}
    rgb = received(engine, clip, "raw")
    assert [m.header["seq"] for m in planes] == list(range(12)) == [m.header["seq"] for m in rgb]
    for yuv, reference in zip(planes, rgb, strict=True):
        assert yuv.header["format"] == "i420" and yuv.image is not None
        assert yuv.image.shape == (144, 128)
        assert reference.image is not None
        error = i420_to_rgb(yuv.image, yuv.color_tags).astype(float) - reference.image
        assert 10 * np.log10(255**2 / np.mean(error**2)) > 30
