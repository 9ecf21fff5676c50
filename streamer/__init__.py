"""hdm-stream's pipeline: PyAV decode -> batched HDM with steadied DCP masks -> encode/publish."""

import os as _os

# Before torch loads OpenMP: its idle threads sleep instead of spinning. On a CPU, OpenVINO's
# threads, FFmpeg's and ours share the cores with PyTorch's, and spinning OpenMP threads took
# them: HDM-S at 720p went from 43 to 89 ms a frame (the README's real-time table). An
# explicit setting in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from streamer.config import RunConfig, load_config
from streamer.engine import (
    Engine,
    EngineBatch,
    EngineSettings,
    Optimisations,
    PendingBatch,
    SmoothingParams,
    StabiliserParams,
    TemporalState,
)
from streamer.enhancer import Enhancer
from streamer.errors import (
    ConfigError,
    EngineError,
    FrameError,
    JobError,
    MessageError,
    RunErrors,
    SinkError,
    SourceEndedError,
    SourceError,
    StreamerError,
    StreamExists,
)
from streamer.frames import ColorTags, Frame, Layout, StreamInfo
from streamer.publish.publisher import PublishSettings
from streamer.publish.subscriber import Subscriber
from streamer.publish.wire import Message
from streamer.queues import Policy
from streamer.runtime.batcher import BatchSettings
from streamer.runtime.pipeline import Pipeline
from streamer.runtime.server import Server
from streamer.runtime.session import StreamSession
from streamer.sinks import EncodeSettings, FileSink, Output, Sink, ZmqSink
from streamer.sources import ReconnectPolicy, Source, SourceKind, VideoSource

__all__ = [
    "BatchSettings",
    "ColorTags",
    "ConfigError",
    "Engine",
    "EngineBatch",
    "EngineError",
    "EngineSettings",
    "Enhancer",
    "FileSink",
    "EncodeSettings",
    "Frame",
    "FrameError",
    "JobError",
    "Layout",
    "Message",
    "MessageError",
    "Optimisations",
    "Output",
    "PendingBatch",
    "Pipeline",
    "Policy",
    "PublishSettings",
    "ReconnectPolicy",
    "RunConfig",
    "RunErrors",
    "Server",
    "SinkError",
    "Sink",
    "SmoothingParams",
    "Source",
    "SourceEndedError",
    "SourceError",
    "SourceKind",
    "StabiliserParams",
    "StreamInfo",
    "StreamExists",
    "StreamSession",
    "StreamerError",
    "Subscriber",
    "TemporalState",
    "VideoSource",
    "ZmqSink",
    "load_config",
]
