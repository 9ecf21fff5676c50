"""Frames made in memory, for the tests of one stage that need no decoder."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np

from streamer.frames import ColorTags, Frame, Layout, StreamInfo

__all__ = ["info_for", "picture"]


def picture(seq: int, *, size: tuple[int, int] = (96, 128), value: int = 100,
            layout: Layout = Layout.RGB24, stream_id: str = "stream0",
            capture_time: float | None = None) -> Frame:
    """Frame ``seq`` of a stream at 25 fps: a flat picture of ``value`` (RGB24 H×W×3, or I420
    planes (3H/2)×W), pts = seq."""
    height, width = size
    shape = (height * 3 // 2, width) if layout is Layout.I420 else (height, width, 3)
    image = np.full(shape, value, np.uint8)
    return Frame(image, layout, seq, Fraction(1, 25), seq,
                 time.monotonic() if capture_time is None else capture_time, ColorTags(),
                 stream_id)


def info_for(size: tuple[int, int] = (96, 128), *, live: bool = False,
             layouts: frozenset[Layout] = frozenset({Layout.RGB24, Layout.I420})) -> StreamInfo:
    """What a source of such pictures would say when opened."""
    height, width = size
    return StreamInfo("stream0", "made in memory", width, height, Fraction(25), None, live,
                      layouts)
