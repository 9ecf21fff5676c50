"""Side by side: input | enhanced in one picture, for comparing (``encode.side_by_side``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from streamer.frames import RGB, Layout, Passthrough, StreamInfo
from streamer.media.convert import rgb_image
from streamer.sinks.base import Output, Sink

__all__ = ["SideBySide"]


class SideBySide:
    """Wraps a sink: each frame it gets is the input and the enhanced frame joined, twice as
    wide. Both halves are RGB (the input is converted on the CPU if it came as planes)."""

    accepts = RGB

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.name = inner.name
        self.policy = inner.policy
        self.wants_packets = inner.wants_packets

    @property
    def unsent(self) -> int:
        return self.inner.unsent

    def open(self, info: StreamInfo) -> None:
        self.inner.open(dataclasses.replace(info, width=info.width * 2))

    def write(self, output: Output) -> None:
        enhanced, original = output.enhanced, output.original
        left = rgb_image(original)  # the same depth as the enhanced half: both follow the source
        joined = np.concatenate([left, enhanced.image], axis=1)
        frame = enhanced.with_image(joined, Layout.rgb_for(joined.dtype))
        self.inner.write(Output(frame, original))

    def write_packet(self, packet: Passthrough) -> None:
        self.inner.write_packet(packet)

    def idle(self) -> None:
        self.inner.idle()

    def close(self, error: BaseException | None = None) -> None:
        self.inner.close(error)
