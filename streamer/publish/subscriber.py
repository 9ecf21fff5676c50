"""The consumer side of the ZeroMQ output: receive frames with their headers.

    with Subscriber("tcp://127.0.0.1:5555") as sub:
        for message in sub:               # stops at the end message, or when the publisher
            use(message.image, message.header["pts"])   # has been silent for silence_s
        print(sub.missed, sub.malformed, sub.gone)

A message that does not follow the wire format (another program's, a corrupted one) is counted
in ``malformed``, logged once per kind of fault, and skipped: it never ends the loop. The
publisher sends a heartbeat every second while it has no frame to send; ``silence_s`` without
any message means it has gone (``gone`` is then True).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import TracebackType

import zmq
import zmq.auth

from streamer.errors import ConfigError, MessageError
from streamer.publish.wire import Message

__all__ = ["Subscriber"]

log = logging.getLogger(__name__)


class Subscriber:
    """SUB (mode ``pub``) or PULL (mode ``push``) socket connected to a publisher.

    Counters: ``received`` frames; ``missed``: frames of the streams heard that never arrived
    here, counted from each stream's first frame (seq 0), so a late joiner knows what it
    missed, up to the highest seq heard of (frames' and heartbeats') or the count of frames
    the publisher says it sent (heartbeats' and the end message's ``frames``), whichever is
    more: frames lost after the last one received count too; ``malformed`` messages
    skipped.
    """

    def __init__(
        self, endpoint: str, *, topic: str = "", mode: str = "pub", hwm: int = 4,
        silence_s: float = 5.0, curve_server_key: str | None = None,
        curve_secret: str | None = None,
    ) -> None:
        """``curve_server_key``: the publisher's public key file, for a CURVE-secured
        publisher; ``curve_secret``: this client's key pair file (one the publisher accepts;
        without it a fresh pair is made, for publishers that accept any client)."""
        socket_type = zmq.SUB if mode == "pub" else zmq.PULL
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(socket_type)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            if curve_server_key is not None:
                self._secure(curve_server_key, curve_secret)
            if mode == "pub":
                self.socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
            self.socket.connect(endpoint)
        except (zmq.ZMQError, OSError, ValueError) as error:  # a key file, a bad endpoint
            self.socket.close(linger=0)
            raise ConfigError(f"cannot subscribe to {endpoint}: {error}") from error
        self.silence_s = silence_s
        self.received = 0
        self.malformed = 0
        self.gone = False
        self._highest: dict[str, int] = {}  # per topic: the highest seq heard of
        self._announced: dict[str, int] = {}  # per topic: the most frames the publisher sent
        self._received: dict[str, int] = {}  # per topic: frames received
        self._faults_logged: set[str] = set()

    @property
    def missed(self) -> int:
        topics = self._highest.keys() | self._announced.keys()
        return sum(max(0, max(self._highest.get(t, -1) + 1, self._announced.get(t, 0))
                       - self._received.get(t, 0)) for t in topics)

    def recv(self, timeout_s: float | None = None) -> Message | None:
        """The next frame or end message, or None when ``timeout_s`` passes first (heartbeats
        and malformed messages are consumed on the way)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.socket.poll(None if left is None else int(left * 1000)):
                return None
            message = self._parse(self.socket.recv_multipart())
            if message is None:
                continue
            seq = message.header.get("seq")
            if isinstance(seq, int) and seq >= 0:
                self._highest[message.topic] = max(seq, self._highest.get(message.topic, -1))
            frames = message.header.get("frames")
            if (message.end or message.heartbeat) and isinstance(frames, int) and frames >= 0 \
                    and not isinstance(frames, bool):
                self._announced[message.topic] = max(frames,
                                                     self._announced.get(message.topic, 0))
            if message.heartbeat:
                continue
            if not message.end:
                self.received += 1
                self._received[message.topic] = self._received.get(message.topic, 0) + 1
            return message

    def _parse(self, parts: list[bytes]) -> Message | None:
        try:
            return Message.parse(parts)
        except MessageError as error:
            self.malformed += 1
            kind = str(error).split(":")[0][:40]
            if kind not in self._faults_logged:
                self._faults_logged.add(kind)
                log.warning("skipping a malformed message (%s); further ones of this kind are "
                            "only counted", error)
            return None

    def _secure(self, server_key: str, secret_file: str | None) -> None:
        self.socket.setsockopt(zmq.CURVE_SERVERKEY, zmq.auth.load_certificate(server_key)[0])
        public, secret = (zmq.auth.load_certificate(secret_file) if secret_file
                          else zmq.curve_keypair())
        if secret is None:
            raise ConfigError(f"{secret_file} holds no secret key")
        self.socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
        self.socket.setsockopt(zmq.CURVE_SECRETKEY, secret)

    def __iter__(self) -> Iterator[Message]:
        """Frames until the end message, or until the publisher is silent for silence_s."""
        while True:
            message = self.recv(self.silence_s)
            if message is None:
                self.gone = True
                return
            if message.end:
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
