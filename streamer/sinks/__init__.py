"""Outputs: the Sink protocol and its worker; video outputs (an encoder plus a muxer target:
a file, a network URL, an HLS playlist, a job's segment), ZeroMQ, side by side, the web
preview; build_sinks makes them all."""

from streamer.sinks.base import Output, Sink, SinkWorker
from streamer.sinks.build import OutputTarget, build_sinks, video_target
from streamer.sinks.compose import SideBySide
from streamer.sinks.encoder import Encoder, EncodeSettings
from streamer.sinks.file import FileSink, FileTarget, check_output_path
from streamer.sinks.muxer import Muxer, Target
from streamer.sinks.network import HlsTarget, NetworkOutput, UrlTarget
from streamer.sinks.segment import SegmentTarget
from streamer.sinks.video import VideoOutput
from streamer.sinks.zmq import ZmqSink

__all__ = [
    "EncodeSettings", "Encoder", "FileSink", "FileTarget", "HlsTarget", "Muxer",
    "NetworkOutput", "Output", "OutputTarget", "SegmentTarget", "SideBySide", "Sink",
    "SinkWorker", "Target", "UrlTarget", "VideoOutput", "ZmqSink", "build_sinks",
    "check_output_path", "video_target",
]
