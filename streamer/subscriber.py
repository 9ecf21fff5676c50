"""The consumer side of the ZeroMQ output: receive frames with their headers.

    with Subscriber("tcp://127.0.0.1:5555") as sub:
        for message in sub:               # stops at the stream's end message
            use(message.image, message.header["pts"])

``missed`` counts frames the publisher sent that never arrived here (sequence gaps).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

import zmq

from streamer.messages import Message

__all__ = ["Subscriber"]


class Subscriber:
    """SUB (mode ``pub``) or PULL (mode ``push``) socket connected to a publisher."""

    def __init__(
        self, endpoint: str, *, topic: str = "", mode: str = "pub", hwm: int = 4
    ) -> None:
        socket_type = zmq.SUB if mode == "pub" else zmq.PULL
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(socket_type)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        if mode == "pub":
            self.socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.socket.connect(endpoint)
        self.received = 0
        self.missed = 0
        self._last_seq: dict[str, int] = {}

    def recv(self, timeout_s: float | None = None) -> Message | None:
        """The next message, or None when ``timeout_s`` passes first."""
        timeout_ms = None if timeout_s is None else int(timeout_s * 1000)
        if not self.socket.poll(timeout_ms):
            return None
        message = Message.parse(self.socket.recv_multipart())
        if not message.end:
            seq = int(message.header["seq"])
            last = self._last_seq.get(message.topic)
            if last is not None and seq > last + 1:
                self.missed += seq - last - 1
            self._last_seq[message.topic] = seq
            self.received += 1
        return message

    def __iter__(self) -> Iterator[Message]:
        while True:
            message = self.recv()
            if message is None or message.end:
                return
            yield message

    def close(self) -> None:
        self.socket.close(linger=0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
