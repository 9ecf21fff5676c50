"""Video sources: files, network streams, V4L2 cameras and FFmpeg lavfi test sources, via PyAV.

A source decodes frames in its own thread (see pipeline.py) and yields :class:`Frame` objects
and, for file outputs, the audio and subtitle packets to remux untouched. Live sources reconnect
with exponential backoff when the stream fails or stays silent past the watchdog, and report
their state.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.container

from streamer.errors import SourceEndedError, SourceError
from streamer.frames import Frame, from_video_frame

__all__ = ["SourceKind", "SourceState", "VideoSource", "classify"]

log = logging.getLogger(__name__)

_NETWORK_SCHEMES = ("rtsp://", "rtsps://", "udp://", "tcp://", "http://", "https://", "srt://",
                    "rtmp://", "rtp://")


class SourceKind(enum.Enum):
    FILE = "file"
    NETWORK = "network"
    CAMERA = "camera"
    LAVFI = "lavfi"

    @property
    def live(self) -> bool:
        """Streams and cameras run in real time: they drop rather than block, and are reopened
        when they end or fail. Files and lavfi graphs make frames on demand, so they block
        (nothing is lost) and end."""
        return self in (SourceKind.NETWORK, SourceKind.CAMERA)


class SourceState(enum.Enum):
    CONNECTING = "connecting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


def classify(url: str) -> SourceKind:
    """Kind of an input string: ``lavfi:EXPR``, ``/dev/videoN``, a URL, or a file path."""
    if url.startswith("lavfi:"):
        return SourceKind.LAVFI
    if url.startswith("/dev/video"):
        return SourceKind.CAMERA
    if url.lower().startswith(_NETWORK_SCHEMES):
        return SourceKind.NETWORK
    return SourceKind.FILE


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source recovers.

    Args:
        watchdog_s: a live source with no frame for this long is reopened.
        backoff_initial_s, backoff_max_s: wait before the first retry, doubled up to the max.
        max_attempts: consecutive failed reopen attempts before giving up (None: never).
    """

    watchdog_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    max_attempts: int | None = None


class VideoSource:
    """Open with :meth:`open`, then iterate :meth:`frames`; thread-safe :meth:`stop`.

    ``on_packet`` receives the audio and subtitle packets of a file source (for remuxing)
    in demux order; live sources do not pass packets through.
    """

    def __init__(
        self,
        url: str,
        *,
        stream_id: str = "stream0",
        options: dict[str, str] | None = None,
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        max_frames: int | None = None,
    ) -> None:
        self.url = url
        self.max_frames = max_frames
        self.kind = classify(url)
        self.stream_id = stream_id
        self.options = dict(options or {})
        self.reconnect = reconnect
        self.state = SourceState.CONNECTING
        self.reconnects = 0
        self.corrupt_packets = 0  # video packets the decoder refused, skipped
        self._stop = threading.Event()
        self._container: av.container.InputContainer | None = None

    # -- opening ------------------------------------------------------------------------------
    def open(self) -> av.container.InputContainer:
        """Open the input (once); raises SourceError with one clear line when it cannot."""
        if self.kind is SourceKind.FILE and not Path(self.url).is_file():
            raise SourceError(f"input file not found: {self.url}")
        self._container = self._open_container()
        self.state = SourceState.RUNNING
        return self._container

    @property
    def container(self) -> av.container.InputContainer:
        if self._container is None:
            raise SourceError("source is not open")
        return self._container

    def passthrough_streams(self) -> list[av.stream.Stream]:
        """Audio and subtitle streams a file output copies packet by packet."""
        if self.kind.live:
            return []
        return [s for s in self.container.streams if s.type in ("audio", "subtitle")]

    def _open_container(self) -> av.container.InputContainer:
        url, fmt, options = self.url, None, dict(self.options)
        if self.kind is SourceKind.LAVFI:
            url, fmt = self.url.removeprefix("lavfi:"), "lavfi"
        elif self.kind is SourceKind.CAMERA:
            fmt = "v4l2"
        watchdog = self.reconnect.watchdog_s
        timeout = (watchdog, watchdog) if self.kind.live else None
        if self.kind is SourceKind.NETWORK and url.startswith("udp://"):
            # Demux a UDP MPEG-TS stream as it arrives instead of probing for seconds.
            options.setdefault("fifo_size", "1000000")
            options.setdefault("overrun_nonfatal", "1")
        try:
            container = av.open(url, format=fmt, options=options, timeout=timeout)
        except av.error.ProtocolNotFoundError as error:
            scheme = url.split("://", 1)[0]
            raise SourceError(
                f"this FFmpeg build cannot read {scheme}:// streams ({error.strerror})"
            ) from error
        except (av.error.FFmpegError, OSError) as error:
            raise SourceError(f"cannot open {self.url}: {_reason(error)}") from error
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.url} has no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        return container

    # -- reading ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def frames(
        self, on_packet: Callable[[av.Packet], None] | None = None, *, planar: bool = False
    ) -> Iterator[Frame]:
        """Decoded frames until the input ends or :meth:`stop`; live sources reconnect.
        ``planar``: keep 8-bit 4:2:0 frames as I420 planes (see :func:`from_video_frame`)."""
        seq = 0
        while not self._stop.is_set():
            try:
                for frame in self._decode(on_packet):
                    yield from_video_frame(
                        frame, seq=seq, capture_time=time.monotonic(), stream_id=self.stream_id,
                        planar=planar,
                    )
                    seq += 1
                    if self._stop.is_set() or seq == self.max_frames:
                        self._stop.set()
                        break
                if not self.kind.live or self._stop.is_set():
                    break
                log.warning("%s ended; reconnecting", self.url)
            except (av.error.FFmpegError, OSError) as error:
                if not self.kind.live:
                    raise SourceError(
                        f"{self.url} is corrupt or truncated after {seq} frames: {_reason(error)}"
                    ) from error
                log.warning("%s failed (%s); reconnecting", self.url, _reason(error))
            self._reopen()
        self.close()

    def _decode(self, on_packet: Callable[[av.Packet], None] | None) -> Iterator[av.VideoFrame]:
        container = self.container
        video = container.streams.video[0]
        passthrough = self.passthrough_streams() if on_packet else []
        for packet in container.demux([video, *passthrough]):
            if self._stop.is_set():
                return
            if packet.stream.type == "video":
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as error:
                    # A corrupt packet costs its own frames, not the rest of the input (as the
                    # ffmpeg tool does): skipped, counted, logged once.
                    if not self.corrupt_packets:
                        log.warning("%s: skipping corrupt data (%s)", self.url, _reason(error))
                    self.corrupt_packets += 1
                    continue
                yield from (f for f in frames if isinstance(f, av.VideoFrame))
            elif on_packet is not None and packet.dts is not None:
                on_packet(packet)

    def _reopen(self) -> None:
        self.close()
        self.state = SourceState.RECONNECTING
        delay, attempts = self.reconnect.backoff_initial_s, 0
        while not self._stop.is_set():
            if self._stop.wait(delay):
                break
            try:
                self._container = self._open_container()
            except SourceError as error:
                attempts += 1
                limit = self.reconnect.max_attempts
                log.warning("reconnect %d to %s failed: %s", attempts, self.url, error)
                if limit is not None and attempts >= limit:
                    self.state = SourceState.ENDED
                    raise SourceEndedError(
                        f"{self.url} stayed unreachable after {attempts} reconnect attempts"
                    ) from error
                delay = min(delay * 2, self.reconnect.backoff_max_s)
                continue
            self.reconnects += 1
            self.state = SourceState.RUNNING
            log.warning("reconnected to %s", self.url)
            return

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._stop.is_set() or not self.kind.live:
            self.state = SourceState.ENDED


def _reason(error: BaseException) -> str:
    if isinstance(error, av.error.FFmpegError):
        return error.strerror or type(error).__name__
    return str(error)
