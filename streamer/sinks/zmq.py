"""ZeroMQ output: enhanced frames to downstream programs through a
:class:`~streamer.publish.publisher.Publisher` (wire format in streamer/publish/wire.py).

ZeroMQ sockets are not thread-safe: the socket is made in ``open`` and then used by the
sink's worker thread alone (pyzmq allows a socket to migrate across a memory barrier such as
the thread's start).
"""

from __future__ import annotations

from streamer.errors import SinkError
from streamer.frames import ANY, RGB, Frame, Layout, Passthrough, StreamInfo
from streamer.media.convert import i420_image
from streamer.publish.publisher import Publisher, PublishSettings
from streamer.queues import Policy, Stopping
from streamer.sinks.base import Output

__all__ = ["ZmqSink"]


class ZmqSink:
    """Publishes the enhanced frames (a :class:`~streamer.sinks.base.Sink`). ``pub`` mode
    drops the oldest queued frame when sends fall behind (latency first); ``push`` loses
    nothing and waits for its consumer, within the session's stopping rules. An ``i420``
    payload takes the frames in either layout (planes as they come, RGB converted here), so
    it never makes the session convert to RGB; the others take RGB."""

    name = "zmq"
    wants_packets = False

    def __init__(self, settings: PublishSettings, stopping: Stopping) -> None:
        if settings.endpoint is None:
            raise SinkError("no publish endpoint given")
        self.settings = settings
        self.accepts = ANY if settings.payload == "i420" else RGB
        self.policy = Policy.DROP_OLDEST if settings.mode == "pub" else Policy.BLOCK
        self._stopping = stopping
        self._publisher: Publisher | None = None
        self._abandoned = 0  # counted by a publisher already closed
        self._stream_id = ""

    @property
    def unsent(self) -> int:
        """Push mode: frames a consumer that went away never took."""
        return self._abandoned + (self._publisher.abandoned if self._publisher else 0)

    def open(self, info: StreamInfo) -> None:
        self._stream_id = info.stream_id
        self._publisher = Publisher.bind(self.settings, self._stopping.abort,
                                         self._stopping.drain)

    def write(self, output: Output) -> None:
        assert self._publisher is not None
        self._publisher.send(self._in_payload_layout(output.enhanced))

    def _in_payload_layout(self, frame: Frame) -> Frame:
        """An ``i420`` payload's frame as planes (RGB comes when another output asked for
        it); the other payloads accept RGB only, so their frames come as RGB."""
        if self.settings.payload != "i420" or frame.layout is Layout.I420:
            return frame
        return frame.with_image(i420_image(frame), Layout.I420)

    def write_packet(self, packet: Passthrough) -> None:
        """Packets are not published."""

    def idle(self) -> None:
        if self._publisher is not None:
            self._publisher.heartbeat(self._stream_id)

    def close(self, error: BaseException | None = None) -> None:
        """Send the end message (also after an error: consumers must not wait forever)."""
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close(self._stream_id)
            self._abandoned += publisher.abandoned
