"""Outputs: the Sink protocol and its worker; files, ZeroMQ, side by side."""

from streamer.sinks.av_output import EncodeSettings
from streamer.sinks.base import Output, Sink, SinkWorker
from streamer.sinks.compose import SideBySide
from streamer.sinks.file import FileSink, check_output_path
from streamer.sinks.zmq import ZmqSink

__all__ = [
    "FileSink", "EncodeSettings", "Output", "SideBySide", "Sink", "SinkWorker", "ZmqSink",
    "check_output_path",
]
