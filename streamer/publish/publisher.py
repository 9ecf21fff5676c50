"""The publishing side of the ZeroMQ wire (format in wire.py): :class:`Publisher` binds the
socket and sends frames, heartbeats and the end message; the pipeline's output around it is
:class:`~streamer.sinks.zmq.ZmqSink`.

``pub`` mode binds a PUB socket with a small send high-water mark and never blocks: when a
subscriber is slow its queue fills and ZeroMQ drops further frames for that subscriber alone
(other subscribers still get them), so the pipeline keeps its pace. The publisher cannot see
those drops; each subscriber counts them as gaps in ``seq`` (``Subscriber.missed``). ``push``
mode binds a PUSH socket for consumers that must get every frame: sends block (checking for
shutdown) until a consumer takes them.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import zmq
import zmq.auth
import zmq.auth.thread

from streamer.errors import ConfigError, SinkError
from streamer.frames import Frame
from streamer.publish.wire import VERSION, encode_payload

__all__ = ["DRAIN_GRACE_S", "MODES", "PAYLOADS", "Mode", "Payload", "PublishSettings",
           "Publisher", "secure_server"]

log = logging.getLogger(__name__)
Mode = Literal["pub", "push"]
Payload = Literal["raw", "i420", "jpeg"]
MODES: tuple[str, ...] = get_args(Mode)
PAYLOADS: tuple[str, ...] = get_args(Payload)


@dataclass(frozen=True)
class PublishSettings:
    """Args:
    endpoint: where to bind, e.g. ``tcp://127.0.0.1:5555`` or ``ipc:///tmp/hdm``; None: off.
    mode: ``pub`` (drop for slow subscribers) or ``push`` (lossless, blocks).
    payload: ``raw`` RGB bytes, ``i420`` YUV planes (half RGB's bytes; on a CPU the frames
        need no conversion to RGB at all when the outputs all take planes), or ``jpeg``.
    hwm: send high-water mark in messages (frames queued per peer).
    """

    endpoint: str | None = None
    mode: Mode = "pub"
    payload: Payload = "raw"
    jpeg_quality: int = 90
    hwm: int = 4
    linger_ms: int = 250
    heartbeat_s: float = 1.0
    end_grace_s: float = 1.0
    curve_secret: str | None = None
    curve_clients: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"publish.mode must be one of {MODES}, got {self.mode!r}")
        if self.payload not in PAYLOADS:
            raise ConfigError(f"publish.payload must be one of {PAYLOADS}, got {self.payload!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"publish.jpeg_quality must be 1..100, got {self.jpeg_quality}")
        if self.hwm < 1:
            raise ConfigError(f"publish.hwm must be >= 1 (frames queued per peer), got {self.hwm}")
        if self.linger_ms < 0:
            raise ConfigError(f"publish.linger_ms must be >= 0, got {self.linger_ms}")
        for key in ("curve_secret", "curve_clients"):
            path = getattr(self, key)
            if path is not None and not Path(path).exists():
                raise ConfigError(f"publish.{key}: {path} does not exist")
        if self.curve_clients is not None and self.curve_secret is None:
            raise ConfigError("publish.curve_clients needs publish.curve_secret (the "
                              "publisher's own key)")
        if self.heartbeat_s < 0 or self.end_grace_s < 0:
            raise ConfigError("publish.heartbeat_s and publish.end_grace_s must be >= 0, got "
                              f"{self.heartbeat_s} and {self.end_grace_s}")


_authenticator: zmq.auth.thread.ThreadAuthenticator | None = None  # ZeroMQ allows one
_authenticator_lock = threading.Lock()


def secure_server(socket: zmq.Socket[bytes], secret_file: str, clients: str | None) -> None:
    """CURVE: encrypt with the key pair in ``secret_file`` (made by ``zmq.auth``'s
    ``create_certificates``); with ``clients``, a folder of public key files, accept only those
    clients. The process's one ZAP authenticator checks them, each folder as its own domain."""
    global _authenticator
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        raise ValueError(f"{secret_file} holds no secret key (give the .key_secret file)")
    socket.setsockopt(zmq.CURVE_SECRETKEY, secret)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
    socket.setsockopt(zmq.CURVE_SERVER, 1)
    if clients is None:
        return
    with _authenticator_lock:
        if _authenticator is None:
            _authenticator = zmq.auth.thread.ThreadAuthenticator(zmq.Context.instance())
            _authenticator.start()
            atexit.register(_authenticator.stop)  # its socket must close before the context
        _authenticator.configure_curve(domain=clients, location=clients)
    socket.setsockopt(zmq.ZAP_DOMAIN, clients.encode())


DRAIN_GRACE_S = 2.0  # push mode: how long a draining run still waits for a consumer


class Publisher:
    """Sends frames and the end-of-stream message.

    ``stop`` aborts every wait at once. ``drain`` (Ctrl-C, SIGTERM) lets a lossless push run
    finish for a consumer that is still reading, but one that stays away for ``DRAIN_GRACE_S``
    is given up on: the frames left are counted in ``abandoned`` instead of blocking forever.
    """

    def __init__(self, socket: zmq.Socket[bytes], settings: PublishSettings,
                 stop: threading.Event, drain: threading.Event | None = None) -> None:
        self.socket = socket
        self.settings = settings
        self.sent = 0
        self.abandoned = 0
        self.last_seq: int | None = None
        self._last_send = time.monotonic()
        self._stop = stop
        self._drain = drain or threading.Event()
        self._given_up = False

    @classmethod
    def bind(cls, settings: PublishSettings, stop: threading.Event,
             drain: threading.Event | None = None) -> Publisher:
        if settings.endpoint is None:
            raise SinkError("no publish endpoint given")
        socket_type = zmq.PUB if settings.mode == "pub" else zmq.PUSH
        socket: zmq.Socket[bytes] = zmq.Context.instance().socket(socket_type)
        socket.setsockopt(zmq.SNDHWM, settings.hwm)
        socket.setsockopt(zmq.LINGER, settings.linger_ms)
        try:
            if settings.curve_secret is not None:
                secure_server(socket, settings.curve_secret, settings.curve_clients)
            socket.bind(settings.endpoint)
        except (zmq.ZMQError, OSError, ValueError) as error:
            socket.close(linger=0)
            raise SinkError(f"cannot bind {settings.endpoint}: {error}") from error
        return cls(socket, settings, stop, drain)

    def send(self, frame: Frame) -> bool:
        """Publish one frame, already in the payload's layout (I420 for ``i420``, else RGB);
        False only when shutdown came first (push mode)."""
        fmt, payload = encode_payload(frame.image, frame.layout, self.settings.payload,
                                      self.settings.jpeg_quality)
        now_wall, now_mono = time.time(), time.monotonic()
        header = {
            "v": VERSION,
            "seq": frame.seq,
            "pts": frame.pts,
            "time_base": None if frame.time_base is None
            else [frame.time_base.numerator, frame.time_base.denominator],
            "width": frame.width,
            "height": frame.height,
            "format": fmt,
            "color": frame.tags.as_dict(),
            "task": frame.task,
            "capture_time": now_wall - (now_mono - frame.capture_time),
            "publish_time": now_wall,
        }
        parts = [frame.stream_id.encode(), json.dumps(header).encode(), payload]
        if self._send(parts):
            self.sent += 1
            self.last_seq = frame.seq
            self._last_send = time.monotonic()
            return True
        if self._given_up:
            self.abandoned += 1
        return False

    def heartbeat(self, stream_id: str) -> None:
        """After ``heartbeat_s`` without a message, tell subscribers the publisher lives (and
        the last seq sent, so a late joiner knows what it missed). Never waits."""
        interval = self.settings.heartbeat_s
        if not interval or time.monotonic() - self._last_send < interval:
            return
        beat = {"v": VERSION, "heartbeat": True, "seq": self.last_seq, "frames": self.sent,
                "time": time.time()}
        self._try_send([stream_id.encode(), json.dumps(beat).encode(), b""])
        self._last_send = time.monotonic()

    def close(self, stream_id: str) -> None:
        """Send the end message, then close the socket (waiting at most linger_ms). PUB drops
        a message for a subscriber whose queue is full, so the end message is sent again every
        0.1 s for ``end_grace_s``: a slow subscriber that catches up within it still gets it
        (subscribers stop at the first)."""
        parts = [stream_id.encode(),
                 json.dumps({"v": VERSION, "end": True, "frames": self.sent}).encode(), b""]
        self._send(parts)
        if self.settings.mode == "pub":
            deadline = time.monotonic() + self.settings.end_grace_s
            while not self._stop.wait(0.1) and time.monotonic() < deadline:
                self._try_send(parts)
        self.socket.close()

    def _try_send(self, parts: Sequence[bytes | memoryview]) -> None:
        with contextlib.suppress(zmq.Again):  # push: nobody to take it now
            self.socket.send_multipart(parts, flags=zmq.NOBLOCK)

    def _send(self, parts: Sequence[bytes | memoryview]) -> bool:
        if self.settings.mode == "pub":  # never blocks: PUB drops for full subscribers
            self.socket.send_multipart(parts, copy=False)
            return True
        waited = 0.0
        while not self._stop.is_set() and not self._given_up:  # push: wait for a consumer
            if self.socket.poll(100, zmq.POLLOUT):
                self.socket.send_multipart(parts, copy=False)
                return True
            if self._drain.is_set():
                waited += 0.1
                self._given_up = waited >= DRAIN_GRACE_S
        return False
