"""Cutting a file into segments at keyframes, and enhancing one segment.

The plan reads the video's packets once (no decoding): every pts and which are keyframes. A
segment starts at the first keyframe at or after each multiple of ``segment_s`` and holds the
frames whose pts lie before the next segment's start, so the segments hold every frame exactly
once, B-frames and variable frame rate included. Each segment but the first is decoded from an
earlier keyframe, ``preroll`` frames or more before its start, and each but the last on for
``postroll`` frames past its end: those frames go through the engine and the encoder (the mask
smoother, the stabiliser and the encoder's rate control start with history and end with look-
ahead, so no seam shows) but are not written (the cut: streamer/sinks/segment.py).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.errors import ConfigError, SourceError
from streamer.jobs.files import decoded_as_configured
from streamer.queues import Stopping
from streamer.runtime.server import Server
from streamer.runtime.session import StreamSession
from streamer.sinks.build import build_sinks
from streamer.sinks.segment import SegmentTarget
from streamer.sources.video import Window

__all__ = ["Segment", "SegmentPlan", "SegmentResult", "enhance_segment", "file_sha256",
           "job_folder", "plan_segments"]

JOB_SUFFIX = ".hdm-job"  # OUT.hdm-job/: a job's manifest and segments, beside OUT
PREROLL_FRAMES = 30  # about the mask smoother's time constant three times over (alpha 0.1)
POSTROLL_FRAMES = 16  # the encoder's look-ahead past a segment's end (x264 veryfast: 10)


@dataclass(frozen=True)
class Segment:
    """Frames with ``start`` <= pts < ``end`` (None: the file's start / end), decoded from the
    keyframe at ``decode_from`` (the pre-roll's start; None: the file's start) up to
    ``decode_to`` (the post-roll's end; None: the file's end)."""

    index: int
    start: int | None
    end: int | None
    decode_from: int | None
    decode_to: int | None
    frames: int  # how many frames the plan counted in it

    def file(self, folder: Path) -> Path:
        return folder / f"segment{self.index:05d}.mp4"


def job_folder(output: Path) -> Path:
    return output.with_name(output.name + JOB_SUFFIX)


def output_of(folder: Path) -> str:
    return folder.name.removesuffix(JOB_SUFFIX)


@dataclass(frozen=True)
class SegmentPlan:
    segments: tuple[Segment, ...]
    time_base: Fraction
    frames: int
    fingerprint: str  # of the video's packet index: pts, keyframes and sizes

    @property
    def total_frames(self) -> int:
        return sum(s.frames for s in self.segments)


def plan_segments(path: str, segment_s: float, preroll: int = PREROLL_FRAMES,
                  postroll: int = POSTROLL_FRAMES) -> SegmentPlan:
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
        decode_to = pts[high + postroll] if high + postroll < len(pts) else None
        segments.append(Segment(index, start, end, decode_from, decode_to, high - low))
    return SegmentPlan(tuple(segments), time_base, len(pts), digest.hexdigest())


@dataclass(frozen=True)
class SegmentResult:
    """What a worker returns (a manifest entry): never frames, only where they are, and the
    SHA-256 of the finished file (``--resume`` trusts a segment only if it still matches)."""

    index: int
    file: str
    frames: int
    bytes: int
    seconds: float
    sha256: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _finish(part: Path, path: Path) -> tuple[int, str]:
    """Flush the complete ``part`` to disk, hash it and rename it to ``path``: a segment
    file of the final name is always a whole one, and its hash is of what was written."""
    with part.open("rb+") as file:
        os.fsync(file.fileno())
    size, sha256 = part.stat().st_size, file_sha256(part)
    part.replace(path)
    return size, sha256


def enhance_segment(config: RunConfig, engine: Engine, input: str, segment: Segment,
                    folder: Path) -> SegmentResult:
    """Enhance one segment into its own MP4 in ``folder`` (the input's pts and time base, the
    run's encoder settings, video only), through ``engine``. It is written as a ``.part``
    file, renamed when complete; on any failure (an error while writing, a full disk,
    Ctrl-C) the ``.part`` file is removed."""
    started = time.monotonic()
    window = Window(segment.decode_from, segment.decode_to)
    source = decoded_as_configured(config, input, stream_id=f"segment{segment.index}",
                                   window=window)
    path = segment.file(folder)
    part = path.with_suffix(".part.mp4")
    encode = dataclasses.replace(config.encode, fragmented=False)
    target = SegmentTarget(part, segment.start, segment.end, joined_into=output_of(folder))
    try:
        stopping = Stopping()
        sinks = build_sinks([target], encode, live=False, stopping=stopping)
        session = StreamSession(source, sinks, batching=config.batch, stopping=stopping)
        server = Server(engine, config.batch)
        server.add(session)
        server.start()
        try:
            server.join()
        except KeyboardInterrupt:  # the segment is given up
            server.drain()
            server.join()
            raise
        written = target.cut.packets
        if written != segment.frames:
            raise SourceError(f"segment {segment.index} of {input}: {written} frames "
                              f"written, {segment.frames} planned")
        size, sha256 = _finish(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return SegmentResult(segment.index, path.name, written, size,
                         round(time.monotonic() - started, 3), sha256)
