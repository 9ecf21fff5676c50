"""Deinterlacing by FFmpeg's ``bwdif`` filter, one output frame per input frame.

An interlaced picture holds two fields sampled 1/50 s apart; the model sees it as one image
and mixes the fields where things move. ``bwdif`` (the motion-adaptive deinterlacer of the
ffmpeg tool) in ``send_frame`` mode keeps the frame count and every pts, so the output stays
frame-for-frame the input; it holds one frame back, given out by :meth:`flush`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from fractions import Fraction

import av
import av.filter

__all__ = ["Deinterlacer"]


class Deinterlacer:
    """Push decoded frames, get progressive ones; a new graph when the picture changes."""

    def __init__(self, time_base: Fraction | None) -> None:
        self.time_base = time_base or Fraction(1, 90_000)
        self._pts: deque[int | None] = deque()  # of the frames held, in order
        self._graph: av.filter.Graph | None = None
        self._shape: tuple[int, int, str] | None = None

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        source = graph.add_buffer(width=frame.width, height=frame.height,
                                  format=frame.format, time_base=self.time_base)
        bwdif = graph.add("bwdif", "mode=send_frame:parity=auto:deint=all")
        sink = graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        graph.configure()
        return graph

    def push(self, frame: av.VideoFrame) -> Iterator[av.VideoFrame]:
        shape = (frame.width, frame.height, frame.format.name)
        if self._graph is None or shape != self._shape:
            yield from self.flush()
            self._graph, self._shape = self._build(frame), shape
        self._pts.append(frame.pts)
        self._graph.push(frame)
        yield from self._pull()

    def flush(self) -> Iterator[av.VideoFrame]:
        """The frames still held (at the end, or before the picture changes)."""
        if self._graph is None:
            return
        self._graph.push(None)
        yield from self._pull()
        self._graph = None

    def _pull(self) -> Iterator[av.VideoFrame]:
        assert self._graph is not None
        while True:
            try:
                out = self._graph.pull()
            except (BlockingIOError, EOFError, av.error.EOFError):
                return
            except av.error.FFmpegError as error:
                if error.errno == 11:  # EAGAIN: it needs the next frame first
                    return
                raise
            if isinstance(out, av.VideoFrame) and self._pts:
                # bwdif counts in half the input's time base (room for a field rate): give
                # each frame its input's own pts back, one out for one in.
                out.pts, out.time_base = self._pts.popleft(), self.time_base
                yield out
