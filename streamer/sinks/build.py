"""Every output of a session made in one place: ``run`` (runtime/pipeline.py), ``serve``
(service/service.py) and the jobs (jobs/job.py, jobs/segments.py) name their outputs as
targets, and :func:`build_sinks` turns each into its sink: a file, a pipe, a network stream or
an HLS playlist into an encoder plus a muxer (input | enhanced when the settings say side by
side), an image sequence or a still into pictures, a job's segment into a cut file, a publish
endpoint into a ZeroMQ socket, a progress target into key=value lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from streamer.media.photo import is_photo
from streamer.publish.publisher import PublishSettings
from streamer.queues import Stopping
from streamer.sinks.base import Sink
from streamer.sinks.compose import SideBySide
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileSink, FileTarget
from streamer.sinks.network import HlsTarget, NetworkOutput, UrlTarget
from streamer.sinks.pictures import PicturesOutput, PicturesTarget
from streamer.sinks.pipe import PipeTarget, pipe_descriptor
from streamer.sinks.progress import ProgressSink, ProgressTarget
from streamer.sinks.segment import SegmentTarget
from streamer.sinks.video import VideoOutput
from streamer.sinks.zmq import ZmqSink

__all__ = ["OutputTarget", "VideoTarget", "build_sinks", "existing_output", "video_outputs",
           "video_target"]

VideoTarget = FileTarget | PipeTarget | UrlTarget | PicturesTarget
OutputTarget = VideoTarget | SegmentTarget | PublishSettings | ProgressTarget
"""What an output is: a file, a pipe, a network URL or an HLS playlist (an :class:`HlsTarget`
is a :class:`UrlTarget`), pictures, a job's segment, a ZeroMQ endpoint, or progress lines."""


def video_target(target: str) -> VideoTarget:
    """The video output a ``run -o`` target names: standard output (``-``, ``pipe:N``), a URL
    (``udp://``, ``srt://``, ``rtmp://``, ``rtsp://``), an HLS playlist (``.m3u8``), pictures
    (an image sequence's ``%05d.png`` or a still's name), or a file."""
    fd = pipe_descriptor(target)
    if fd is not None:
        return PipeTarget(fd)
    if "://" in target:
        return UrlTarget(target)
    if target.endswith(".m3u8"):
        return HlsTarget(target)
    if is_photo(target):
        return PicturesTarget(target)
    return FileTarget(Path(target))


def existing_output(target: str) -> Path | None:
    """The file a ``run -o`` target would replace, if it exists (an image sequence's first
    picture, an HLS playlist); None for streams and pipes."""
    video = video_target(target)
    if isinstance(video, PicturesTarget):
        path = video.first()
    elif isinstance(video, FileTarget):
        path = video.path
    elif isinstance(video, HlsTarget):
        path = Path(video.url)  # the playlist
    else:
        return None
    return path if path.exists() else None


def build_sinks(targets: Sequence[OutputTarget], encode: EncodeSettings, *, live: bool,
                stopping: Stopping, side_by_side: bool | None = None) -> list[Sink]:
    """The sinks of ``targets``, in their order. ``live``: the source is live (network
    outputs drop rather than wait); ``stopping``: the session's (a push publisher gives up
    with it); ``side_by_side``: video outputs write input | enhanced (default: as ``encode``
    says)."""
    side = encode.side_by_side if side_by_side is None else side_by_side
    sinks: list[Sink] = []
    for target in targets:
        if isinstance(target, PublishSettings):
            sinks.append(ZmqSink(target, stopping))
            continue
        if isinstance(target, ProgressTarget):
            sinks.append(ProgressSink(target, live=live))
            continue
        video = _video(target, encode, live)
        sinks.append(SideBySide(video) if side else video)
    return sinks


def video_outputs(sinks: Sequence[Sink]) -> list[VideoOutput | PicturesOutput]:
    """The video outputs inside sinks :func:`build_sinks` made (unwrapped from side by side
    and from a network output's reconnects), for what they hold once closed."""
    found: list[VideoOutput | PicturesOutput] = []
    for sink in sinks:
        inner = sink.inner if isinstance(sink, SideBySide) else sink
        video = inner.video if isinstance(inner, NetworkOutput) else inner
        if isinstance(video, VideoOutput | PicturesOutput):
            found.append(video)
    return found


def _video(target: VideoTarget | SegmentTarget, encode: EncodeSettings, live: bool) -> Sink:
    if isinstance(target, UrlTarget):
        return NetworkOutput(target, encode, lossless=not live)
    if isinstance(target, SegmentTarget):
        return VideoOutput(target, encode, wants_packets=False, cut=target.cut)
    if isinstance(target, PicturesTarget):
        return PicturesOutput(target)
    if isinstance(target, PipeTarget):
        return VideoOutput(target, encode)
    return FileSink(target.path, encode)
