"""hdm-stream's pipeline: PyAV decode -> batched HDM with steadied DCP masks -> encode/publish."""

from streamer.config import RunConfig, load_config
from streamer.engine import Engine, EngineSettings, Optimisations, PendingBatch
from streamer.enhancer import Enhancer
from streamer.errors import (
    ConfigError,
    EngineError,
    FrameError,
    SinkError,
    SourceEndedError,
    SourceError,
    StreamerError,
)
from streamer.file_sink import FileSink, FileSinkSettings
from streamer.frames import ColorTags, Frame
from streamer.messages import Message
from streamer.pipeline import BatchSettings, Pipeline
from streamer.publish import Publisher, PublishSettings
from streamer.source import ReconnectPolicy, SourceKind, SourceState, VideoSource
from streamer.subscriber import Subscriber
from streamer.temporal import (
    MaskSmoother,
    OutputStabiliser,
    SmoothingParams,
    StabiliserParams,
)

__all__ = [
    "BatchSettings",
    "ColorTags",
    "ConfigError",
    "Engine",
    "EngineError",
    "EngineSettings",
    "Enhancer",
    "FileSink",
    "FileSinkSettings",
    "FrameError",
    "Frame",
    "MaskSmoother",
    "Message",
    "Optimisations",
    "OutputStabiliser",
    "PendingBatch",
    "Pipeline",
    "PublishSettings",
    "Publisher",
    "ReconnectPolicy",
    "RunConfig",
    "SinkError",
    "SmoothingParams",
    "StabiliserParams",
    "SourceEndedError",
    "SourceError",
    "SourceKind",
    "SourceState",
    "StreamerError",
    "Subscriber",
    "VideoSource",
    "load_config",
]
