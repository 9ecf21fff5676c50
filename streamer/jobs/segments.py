"""Cutting a file into segments at keyframes, and enhancing one segment.

The plan reads the video's packets once (no decoding): every pts and which are keyframes. A
segment starts at the first keyframe at or after each multiple of ``segment_s`` and holds the
frames whose pts lie before the next segment's start, so the segments hold every frame exactly
once, B-frames and variable frame rate included. Each segment but the first is decoded from an
earlier keyframe, ``preroll`` frames or more before its start: those frames go through the
engine (the mask smoother and the stabiliser start with history, so no seam shows) but are not
written.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.errors import ConfigError, SourceError
from streamer.frames import StreamInfo
from streamer.server import Server
from streamer.session import StreamSession
from streamer.sinks.base import Output, Sink
from streamer.sinks.file import FileSink
from streamer.sources.video import VideoSource, Window

__all__ = ["Segment", "SegmentPlan", "SegmentResult", "enhance_segment", "plan_segments"]

PREROLL_FRAMES = 30  # about the mask smoother's time constant three times over (alpha 0.1)


@dataclass(frozen=True)
class Segment:
    """Frames with ``start`` <= pts < ``end`` (None: the file's start / end), decoded from the
    keyframe at ``decode_from`` (the pre-roll's start; None: the file's start)."""

    index: int
    start: int | None
    end: int | None
    decode_from: int | None
    frames: int  # how many frames the plan counted in it

    def file(self, folder: Path) -> Path:
        return folder / f"segment{self.index:05d}.mp4"


@dataclass(frozen=True)
class SegmentPlan:
    segments: tuple[Segment, ...]
    time_base: Fraction
    frames: int
    fingerprint: str  # of the video's packet index: pts, keyframes and sizes

    @property
    def total_frames(self) -> int:
        return sum(s.frames for s in self.segments)


def plan_segments(path: str, segment_s: float, preroll: int = PREROLL_FRAMES) -> SegmentPlan:
    """Segments of about ``segment_s`` seconds cut at keyframes (see the module's note)."""
    if segment_s <= 0:
        raise ConfigError(f"--segment-seconds must be > 0, got {segment_s:g}")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as error:
        raise SourceError(f"cannot open {path}: {error}") from error
    with container:
        if not container.streams.video:
            raise SourceError(f"{path} has no video stream")
        video = container.streams.video[0]
        time_base = video.time_base
        if time_base is None:
            raise SourceError(f"{path}: its video has no time base; it cannot be segmented")
        digest = hashlib.sha256()
        pts: list[int] = []
        keyframes: list[int] = []
        try:
            for packet in container.demux(video):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    raise SourceError(f"{path}: packets without timestamps (a raw stream?) "
                                      "cannot be segmented; run it without --segment-seconds")
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframes.append(packet.pts)
                digest.update(f"{packet.pts},{packet.is_keyframe:d},{packet.size};".encode())
        except av.error.FFmpegError as error:
            raise SourceError(f"{path} cannot be read to the end ({error}); segments need a "
                              "whole file") from error
    if not pts:
        raise SourceError(f"{path} has no video frames")
    pts.sort()
    keyframes.sort()
    step = round(segment_s / time_base)
    first = pts[0]
    starts: list[int] = []
    for keyframe in keyframes:
        if keyframe - first >= step * (len(starts) + 1):
            starts.append(keyframe)
    bounds: list[int | None] = [None, *starts, None]
    segments = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        low = 0 if start is None else bisect.bisect_left(pts, start)
        high = len(pts) if end is None else bisect.bisect_left(pts, end)
        decode_from = None
        if start is not None:
            wanted = pts[max(0, low - preroll)]
            decode_from = keyframes[bisect.bisect_right(keyframes, wanted) - 1]
        segments.append(Segment(index, start, end, decode_from, high - low))
    return SegmentPlan(tuple(segments), time_base, len(pts), digest.hexdigest())


@dataclass(frozen=True)
class SegmentResult:
    """What a worker returns (a manifest entry): never frames, only where they are."""

    index: int
    file: str
    frames: int
    bytes: int
    seconds: float


class _WindowSink:
    """Writes only the frames at or past ``start`` (the pre-roll feeds the engine, not the
    file) into ``inner``, which gets the video alone."""

    name = "segment"
    wants_packets = False

    def __init__(self, inner: FileSink, start: int | None) -> None:
        self.inner = inner
        self.start = start
        self.accepts = inner.accepts
        self.policy = inner.policy
        self.unsent = 0

    def open(self, info: StreamInfo) -> None:
        self.inner.open(dataclasses.replace(info, passthrough=(), chapters=(), attachments=(),
                                            metadata={}))

    def write(self, output: Output) -> None:
        pts = output.enhanced.pts
        if self.start is None or (pts is not None and pts >= self.start):
            self.inner.write(output)

    def write_packet(self, packet: object) -> None:
        """Segments hold video only."""

    def idle(self) -> None:
        self.inner.idle()

    def close(self, error: BaseException | None = None) -> None:
        self.inner.close(error)


def enhance_segment(config: RunConfig, engine: Engine, input: str, segment: Segment,
                    folder: Path) -> SegmentResult:
    """Enhance one segment into its own MP4 in ``folder`` (the input's pts and time base, the
    run's encoder settings, video only), through ``engine``."""
    started = time.monotonic()
    s = config.source
    window = Window(segment.decode_from, segment.end)
    source = VideoSource(input, stream_id=f"segment{segment.index}", options=s.options,
                         tone_map=s.tone_map, deinterlace=s.deinterlace, window=window)
    path = segment.file(folder)
    part = path.with_suffix(".part.mp4")  # renamed when complete: a killed run leaves no
    encode = dataclasses.replace(config.encode, fragmented=False)  # half segment behind
    file = FileSink(part, encode)
    sink: Sink = _WindowSink(file, segment.start)
    session = StreamSession(source, [sink], batching=config.batch)
    server = Server(engine, config.batch)
    server.add(session)
    server.start()
    try:
        server.join()
    except KeyboardInterrupt:  # the segment is given up (its .part file removed)
        server.drain()
        server.join()
        part.unlink(missing_ok=True)
        raise
    if file.frames_written != segment.frames:
        part.unlink(missing_ok=True)
        raise SourceError(f"segment {segment.index} of {input}: {file.frames_written} frames "
                          f"written, {segment.frames} planned")
    part.replace(path)
    return SegmentResult(segment.index, path.name, file.frames_written, path.stat().st_size,
                         round(time.monotonic() - started, 3))
