"""The ZeroMQ wire format shared by the publisher and the subscriber.

A frame is a three-part message ``[topic, header, payload]``:

* ``topic``: the stream id, UTF-8 (subscribers filter on it);
* ``header``: UTF-8 JSON, ``{"v": 1, "seq", "pts", "time_base": [num, den] | null, "width",
  "height", "format": "rgb24" | "rgb48le" | "jpeg", "color": {"matrix", "range", "primaries",
  "transfer"}, "capture_time", "publish_time"}``; times are seconds since the epoch; ``seq``
  counts every decoded frame, so a gap means frames dropped upstream or for this subscriber;
* ``payload``: the pixels, row-major H×W×3 RGB for raw formats, or a JPEG file.

The end of a stream is ``[topic, {"v": 1, "end": true, "frames": N}, b""]`` (N frames sent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from streamer.errors import MessageError
from streamer.frames import Layout

__all__ = ["VERSION", "Message", "decode_payload", "encode_payload", "to_uint8"]

VERSION = 1
_RAW_FORMATS = {Layout.RGB24: "rgb24", Layout.RGB48: "rgb48le"}  # the header's "format"


@dataclass(frozen=True)
class Message:
    """One received message: the topic, the decoded header, and the image (None at the end)."""

    topic: str
    header: dict[str, Any]
    image: np.ndarray | None

    @property
    def end(self) -> bool:
        return bool(self.header.get("end"))

    @classmethod
    def parse(cls, parts: list[bytes]) -> Message:
        if len(parts) != 3:
            raise MessageError(f"expected 3 message parts, got {len(parts)}")
        topic, raw_header, payload = parts
        header = json.loads(raw_header)
        if header.get("v") != VERSION:
            raise MessageError(f"unsupported message version {header.get('v')!r}")
        image = None if header.get("end") else decode_payload(header, payload)
        return cls(topic.decode(), header, image)


def encode_payload(image: np.ndarray, kind: str, jpeg_quality: int) -> tuple[str, bytes]:
    """(format name, bytes) for an RGB image; ``kind`` is ``raw`` or ``jpeg``."""
    if kind == "jpeg":
        ok, encoded = cv2.imencode(
            ".jpg", np.ascontiguousarray(to_uint8(image)[..., ::-1]),
            [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality],
        )
        if not ok:
            raise MessageError("JPEG encoding failed")
        return "jpeg", encoded.tobytes()
    return _RAW_FORMATS[Layout.rgb_for(image.dtype)], np.ascontiguousarray(image).tobytes()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """8-bit RGB from 8- or 16-bit RGB (the high byte of 16-bit samples)."""
    return image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)


def decode_payload(header: dict[str, Any], payload: bytes) -> np.ndarray:
    height, width, fmt = header["height"], header["width"], header["format"]
    if fmt == "jpeg":
        bgr = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise MessageError("corrupt JPEG payload")
        return np.ascontiguousarray(bgr[..., ::-1])
    dtype = np.dtype("<u2") if fmt == "rgb48le" else np.dtype(np.uint8)
    return np.frombuffer(payload, dtype).reshape(height, width, 3)
