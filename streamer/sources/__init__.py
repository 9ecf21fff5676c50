"""Sources of video: the protocol, and PyAV's files, URLs, cameras and lavfi graphs."""

from streamer.sources.base import Source
from streamer.sources.video import ReconnectPolicy, SourceKind, VideoSource, classify

__all__ = ["ReconnectPolicy", "Source", "SourceKind", "VideoSource", "classify"]
