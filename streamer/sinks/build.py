"""Every output of a session made in one place: ``run`` (runtime/pipeline.py), ``serve``
(service/service.py) and the jobs (jobs/job.py, jobs/segments.py) name their outputs as
targets, and :func:`build_sinks` turns each into its sink: a file, a network stream or an HLS
playlist into an encoder plus a muxer (input | enhanced when the settings say side by side), a
job's segment into a cut file, a publish endpoint into a ZeroMQ socket."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from streamer.publish.publisher import PublishSettings
from streamer.queues import Stopping
from streamer.sinks.base import Sink
from streamer.sinks.compose import SideBySide
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileSink, FileTarget
from streamer.sinks.network import HlsTarget, NetworkOutput, UrlTarget
from streamer.sinks.segment import SegmentTarget
from streamer.sinks.video import VideoOutput
from streamer.sinks.zmq import ZmqSink

__all__ = ["OutputTarget", "build_sinks", "video_outputs", "video_target"]

OutputTarget = FileTarget | UrlTarget | SegmentTarget | PublishSettings
"""What an output is: a file, a network URL or an HLS playlist (an :class:`HlsTarget` is a
:class:`UrlTarget`), a job's segment, or a ZeroMQ endpoint."""


def video_target(target: str) -> FileTarget | UrlTarget:
    """The video output a ``run -o`` target names: a URL (``udp://``, ``srt://``, ``rtmp://``,
    ``rtsp://``), an HLS playlist (``.m3u8``), or a file."""
    if "://" in target:
        return UrlTarget(target)
    if target.endswith(".m3u8"):
        return HlsTarget(target)
    return FileTarget(Path(target))


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
        video = _video(target, encode, live)
        sinks.append(SideBySide(video) if side else video)
    return sinks


def video_outputs(sinks: Sequence[Sink]) -> list[VideoOutput]:
    """The video outputs inside sinks :func:`build_sinks` made (unwrapped from side by side
    and from a network output's reconnects), for what they hold once closed."""
    found = []
    for sink in sinks:
        inner = sink.inner if isinstance(sink, SideBySide) else sink
        video = inner.video if isinstance(inner, NetworkOutput) else inner
        if isinstance(video, VideoOutput):
            found.append(video)
    return found


def _video(target: FileTarget | UrlTarget | SegmentTarget, encode: EncodeSettings,
           live: bool) -> Sink:
    if isinstance(target, UrlTarget):
        return NetworkOutput(target, encode, lossless=not live)
    if isinstance(target, SegmentTarget):
        return VideoOutput(target, encode, wants_packets=False, cut=target.cut)
    return FileSink(target.path, encode)
