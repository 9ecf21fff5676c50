"""A segment of a segmented job (see streamer/jobs/segments.py): a file written through a
:class:`SegmentCut` (a :class:`~streamer.sinks.video.Cut`).

Every frame from the pre-roll to the post-roll is encoded, so the encoder's rate control and
look-ahead see what a whole-file encode sees (without that, an encoder warming up at each start
and winding down at each end showed as a jump of about 2 grey levels at every join); the first
frames at or past ``start`` and ``end`` are forced to be IDR frames, closing the GOPs there, and
only the packets of the frames in between are written, with their pts less the segment's start
(MP4 rounds a track's start to milliseconds; the join adds it back exactly). Video only: the
join copies the input's other streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av.container

from streamer.frames import Frame
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileTarget
from streamer.sinks.muxer import Packets

__all__ = ["SegmentCut", "SegmentTarget"]


class SegmentCut:
    """Which encoded frames of a segment are kept: pts in [``start``, ``end``) (None: the
    file's start / end), and where GOPs are closed."""

    def __init__(self, start: int | None, end: int | None) -> None:
        self.start = start
        self.end = end
        self.packets = 0  # written: the frames of [start, end)
        self.offset = start or 0
        self._edges = [p for p in (start, end) if p is not None]

    def encoder_options(self, options: dict[str, str], codec: str) -> dict[str, str]:
        options = dict(options)
        if codec in ("libx264", "libx265"):
            options.setdefault("forced-idr", "1")  # a forced I frame is an IDR, not only I
        return options

    def keyframe(self, frame: Frame) -> bool:
        """``frame`` must start a GOP (the first at or past an edge)."""
        if self._edges and frame.pts is not None and frame.pts >= self._edges[0]:
            self._edges.pop(0)
            return True
        return False

    def kept(self, packets: Packets) -> Packets:
        end = None if self.end is None else self.end - self.offset
        kept = [p for p in packets if p.pts is not None and p.pts >= 0
                and (end is None or p.pts < end)]
        self.packets += len(kept)
        return kept


@dataclass
class SegmentTarget:
    """A segment's file ``path``, frames with ``start`` <= pts < ``end``; ``joined_into``: the
    output the join writes, whose container decides an ``auto`` codec. ``cut.packets`` says
    how many frames were written."""

    path: Path
    start: int | None
    end: int | None
    joined_into: str
    cut: SegmentCut = field(init=False)
    name = "segment"

    def __post_init__(self) -> None:
        self.cut = SegmentCut(self.start, self.end)

    @property
    def file(self) -> FileTarget:
        return FileTarget(self.path)

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def named_for(self) -> str:
        return self.joined_into  # the codec must be one the output's container holds

    def prepare(self) -> None:
        """Nothing to prepare."""

    def open_container(self, settings: EncodeSettings) -> av.container.OutputContainer:
        return self.file.open_container(settings)

    def encoder_options(self, options: dict[str, str], codec: str, rate: Fraction | None,
                        settings: EncodeSettings) -> dict[str, str]:
        return options

    def discard(self) -> None:
        self.file.discard()

    @property
    def written(self) -> Path:
        return self.path
