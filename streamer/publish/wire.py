"""The ZeroMQ wire format shared by the publisher and the subscriber.

A frame is a three-part message ``[topic, header, payload]``:

* ``topic``: the stream id, UTF-8 (subscribers filter on it);
* ``header``: UTF-8 JSON, ``{"v": 1, "seq", "pts", "time_base": [num, den] | null, "width",
  "height", "format": "rgb24" | "rgb48le" | "i420" | "jpeg", "color": {"matrix", "range",
  "primaries", "transfer"}, "task", "capture_time", "publish_time"}``; times are seconds since
  the epoch; ``task`` is what enhanced the frame (``dehaze``, ``lowlight``, ``derain``, or
  ``none`` where ``--task auto`` left it as it was); ``seq`` counts every decoded frame, so a
  gap means frames dropped upstream or for this subscriber;
* ``payload``: the pixels: row-major H×W×3 RGB (``rgb24``, ``rgb48le``); ``i420``: 8-bit Y
  (H×W), then U and V (H/2×W/2 each), in the YUV of ``color``'s matrix and range, even sides
  only (what most decoders and encoders take as it is: half RGB's bytes, and no conversion on
  either side); or a JPEG file.

The end of a stream is ``[topic, {"v": 1, "end": true, "frames": N}, b""]`` (N frames sent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from streamer.errors import MessageError
from streamer.frames import ColorTags, Layout

__all__ = ["MAX_PIXELS", "VERSION", "Message", "decode_payload", "encode_payload", "jpeg_size",
           "to_uint8"]

VERSION = 1
_RAW_FORMATS = {Layout.RGB24: "rgb24", Layout.RGB48: "rgb48le", Layout.I420: "i420"}


MAX_PIXELS = 100_000_000  # a header claiming more is refused before anything is allocated
_REQUIRED = {"seq": int, "width": int, "height": int, "format": str}
# bytes a pixel takes (0: compressed)
_FORMATS: dict[str, float] = {"rgb24": 3, "rgb48le": 6, "i420": 1.5, "jpeg": 0}


@dataclass(frozen=True)
class Message:
    """One received message: the topic, the decoded header, and the image (None at the end
    and for heartbeats)."""

    topic: str
    header: dict[str, Any]
    image: np.ndarray | None

    @property
    def end(self) -> bool:
        return bool(self.header.get("end"))

    @property
    def heartbeat(self) -> bool:
        return bool(self.header.get("heartbeat"))

    @property
    def color_tags(self) -> ColorTags:
        """The colours the picture is in: what an ``i420`` payload's YUV means."""
        return ColorTags.from_dict(self.header.get("color") or {})

    @classmethod
    def parse(cls, parts: list[bytes]) -> Message:
        """Check and decode one message; MessageError says what is wrong with it (a message
        from another program may be anything: nothing here trusts a size it was given)."""
        if len(parts) != 3:
            raise MessageError(f"expected 3 message parts, got {len(parts)}")
        raw_topic, raw_header, payload = (bytes(p) for p in parts)
        try:
            topic = raw_topic.decode()
            header = json.loads(raw_header)
        except (UnicodeDecodeError, ValueError) as error:
            raise MessageError(f"topic or header is not UTF-8 JSON: {error}") from None
        if not isinstance(header, dict):
            raise MessageError("the header must be a JSON object")
        if header.get("v") != VERSION:
            raise MessageError(f"unsupported message version {header.get('v')!r}")
        if header.get("end") or header.get("heartbeat"):
            return cls(topic, header, None)
        _check_frame_header(header)
        return cls(topic, header, decode_payload(header, payload))


def _check_frame_header(header: dict[str, Any]) -> None:
    for key, kind in _REQUIRED.items():
        value = header.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise MessageError(f"header key {key!r} must be {kind.__name__}, got {value!r}")
    width, height = header["width"], header["height"]
    if not (0 < width and 0 < height and width * height <= MAX_PIXELS):
        raise MessageError(f"frame size {width}x{height} is not in 1..{MAX_PIXELS} pixels")
    if header["format"] not in _FORMATS:
        raise MessageError(f"unknown format {header['format']!r}; expected {sorted(_FORMATS)}")
    if header["format"] == "i420" and (width % 2 or height % 2):
        raise MessageError(f"an i420 frame has even sides, got {width}x{height}")
    if header["seq"] < 0:
        raise MessageError(f"seq must be >= 0, got {header['seq']!r}")
    _check_optional_keys(header)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_optional_keys(header: dict[str, Any]) -> None:
    """The optional keys, when there, as the README gives them: a consumer computing
    ``pts * time_base`` or comparing ``capture_time`` must not meet a string or a zero
    denominator. ``pts`` and ``time_base`` may be null (raw streams have none)."""
    pts = header.get("pts")
    if pts is not None and (not isinstance(pts, int) or isinstance(pts, bool)):
        raise MessageError(f"header key 'pts' must be int or null, got {pts!r}")
    time_base = header.get("time_base")
    if time_base is not None and not (
            isinstance(time_base, list) and len(time_base) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                    for n in time_base)):
        raise MessageError("header key 'time_base' must be [num, den] of positive ints or "
                           f"null, got {time_base!r}")
    for key in ("capture_time", "publish_time"):
        value = header.get(key)
        if value is not None and not _number(value):
            raise MessageError(f"header key {key!r} must be a number of seconds, got {value!r}")
    task = header.get("task")
    if task is not None and not isinstance(task, str):
        raise MessageError(f"header key 'task' must be a string or null, got {task!r}")
    color = header.get("color")
    if color is None:
        return
    if not isinstance(color, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
            for v in color.values()):
        raise MessageError("header key 'color' must be an object of FFmpeg's codes (ints "
                           f"0-255), got {color!r}")
    if color.get("range", 0) > 2:
        raise MessageError(f"header key 'color' has range {color['range']}; FFmpeg's are 0-2")


def encode_payload(image: np.ndarray, layout: Layout, kind: str, jpeg_quality: int
                   ) -> tuple[str, bytes | memoryview]:
    """(format name, payload) for an image in ``layout`` (RGB, or I420 for ``kind`` ``i420``);
    ``kind`` is ``raw``, ``i420`` or ``jpeg``. A raw payload is the image's own buffer (no
    copy: ZeroMQ sends it zero-copy and holds it until sent)."""
    if (layout is Layout.I420) != (kind == "i420"):
        raise MessageError(f"a {layout.value} picture cannot be sent as a {kind} payload")
    if kind == "jpeg":
        ok, encoded = cv2.imencode(
            ".jpg", np.ascontiguousarray(to_uint8(image)[..., ::-1]),
            [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality],
        )
        if not ok:
            raise MessageError("JPEG encoding failed")
        return "jpeg", encoded.tobytes()
    return _RAW_FORMATS[layout], np.ascontiguousarray(image).data.cast("B")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """8-bit RGB from 8- or 16-bit RGB (the high byte of 16-bit samples)."""
    return image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)


def decode_payload(header: dict[str, Any], payload: bytes) -> np.ndarray:
    """The picture of a checked header: raw bytes must be exactly the header's size (RGB
    H×W×3, I420 (3H/2)×W, the planes one under the other); a JPEG must declare the header's
    size in its own frame header before it is decoded (a small file can claim a huge
    picture)."""
    height, width, fmt = header["height"], header["width"], header["format"]
    if fmt == "jpeg":
        declared = jpeg_size(payload)
        if declared != (width, height):
            raise MessageError(f"the JPEG is {declared} where the header says {(width, height)}")
        bgr = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise MessageError("corrupt JPEG payload")
        return np.ascontiguousarray(bgr[..., ::-1])
    expected = int(width * height * _FORMATS[fmt])
    if len(payload) != expected:
        raise MessageError(f"a {width}x{height} {fmt} payload is {expected} bytes, got "
                           f"{len(payload)}")
    if fmt == "i420":
        return np.frombuffer(payload, np.uint8).reshape(height * 3 // 2, width)
    dtype = np.dtype("<u2") if fmt == "rgb48le" else np.dtype(np.uint8)
    return np.frombuffer(payload, dtype).reshape(height, width, 3)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (SOFn marker), without decoding; None when
    there is none."""
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        if length < 2:
            return None
        at += 2 + length
    return None
