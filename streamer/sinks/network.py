"""Network video outputs: MPEG-TS over UDP or SRT, RTMP (FLV), RTSP push, and HLS into a folder.

Each is a :class:`NetworkOutput`: a :class:`~streamer.sinks.video.VideoOutput` of a
:class:`UrlTarget` (or an :class:`HlsTarget`, a playlist) that connects late. Fed by a live
source they drop their oldest queued frame when they fall behind (counted), so a slow or dead
receiver never stalls inference or the other outputs; fed by a file they lose nothing
(``lossless``), as a file output does. The container is opened in the output's own thread when
the first frame arrives (an SRT listener, say, waits there for its caller while frames drop),
and a connection that fails is reopened after a pause, with a fresh encoder, counting the frames
lost meanwhile. The encoder is tuned for latency (x264's ``zerolatency``) with a keyframe every
two seconds, so a viewer that joins sees a picture soon.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.container

from streamer.errors import ConfigError, SinkError
from streamer.frames import Layout, Passthrough, StreamInfo
from streamer.queues import Policy
from streamer.sinks.base import Output
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.video import VideoOutput

__all__ = ["HlsTarget", "NetworkOutput", "UrlTarget", "default_format"]

log = logging.getLogger(__name__)
RETRY_S = 2.0  # pause before a failed connection is tried again
_FORMATS = {"udp": "mpegts", "srt": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts",
            "rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp"}


def default_format(url: str) -> str:
    """The muxer a URL's scheme implies (udp/srt/tcp: MPEG-TS, rtmp: FLV, rtsp: RTSP)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _FORMATS:
        raise ConfigError(f"output {url!r}: no default format for {scheme}://; give one "
                          f"(format: mpegts, flv, rtsp, ...); known schemes: {sorted(_FORMATS)}")
    return _FORMATS[scheme]


@dataclass(frozen=True)
class UrlTarget:
    """A network stream: ``url`` in ``format`` (default: by the URL's scheme), with FFmpeg
    protocol ``options``."""

    url: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.muxer not in av.formats_available:
            raise ConfigError(f"output {self.url!r}: this FFmpeg has no {self.muxer!r} muxer")

    @property
    def muxer(self) -> str:
        return self.format or default_format(self.url)

    @property
    def name(self) -> str:
        return self.url.split("://", 1)[0].lower()

    @property
    def label(self) -> str:
        return self.url

    @property
    def named_for(self) -> str:
        return self.url

    def prepare(self) -> None:
        """Nothing to prepare: the connection is made with the first frame."""

    def open_container(self, settings: EncodeSettings) -> av.container.OutputContainer:
        """Connect (some protocols connect only when the header is written: the muxer's
        ``start``); SinkError is tried again later, ConfigError (this FFmpeg cannot write the
        protocol at all) stops the stream."""
        options = dict(self.options)
        if self.muxer == "rtsp":
            options.setdefault("rtsp_transport", "tcp")
        try:
            return av.open(self.url, "w", format=self.muxer,
                           options={**options, **settings.muxer_options}, timeout=(5.0, 5.0))
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot open {self.url}: {error}") from error

    def encoder_options(self, options: dict[str, str], codec: str, rate: Fraction | None,
                        settings: EncodeSettings) -> dict[str, str]:
        """Latency first (x264's ``zerolatency``), a keyframe every two seconds so that a
        viewer that joins sees a picture soon."""
        options = dict(options)
        if codec.startswith("libx26"):
            options.setdefault("tune", "zerolatency")
        if rate:
            options["g"] = str(max(1, round(2 * rate)))
        return options

    def discard(self) -> None:
        """Nothing is left of a stream."""

    @property
    def written(self) -> Path | None:
        """A stream is not read back."""
        return None


class HlsTarget(UrlTarget):
    """HLS: the ``playlist`` (``.m3u8``) and two-second MPEG-TS segments beside it, the last six
    kept (older ones deleted); the playlist is finished (``#EXT-X-ENDLIST``) when the run
    ends. A folder given instead of a playlist gets ``index.m3u8``."""

    def __init__(self, playlist: str | Path, *, segment_s: float = 2.0, keep: int = 6) -> None:
        playlist = Path(playlist)
        if playlist.suffix != ".m3u8":
            playlist = playlist / "index.m3u8"
        folder = playlist.parent
        options = {"hls_time": f"{segment_s:g}", "hls_list_size": str(keep),
                   "hls_flags": "delete_segments+independent_segments",
                   "hls_segment_filename": str(folder / f"{playlist.stem}%05d.ts")}
        super().__init__(str(playlist), "hls", options)

    @property
    def folder(self) -> Path:
        return Path(self.url).parent

    @property
    def name(self) -> str:
        return "hls"

    def prepare(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"cannot make the HLS folder {self.folder}: {error}") from error


class NetworkOutput:
    """Streams the enhanced frames to ``target`` (a :class:`~streamer.sinks.base.Sink`):
    connected when the first frame comes and reconnected after a failure, counting in
    ``unsent`` the frames that came while there was no connection. ``lossless``: the source is
    not live, nothing may be dropped."""

    wants_packets = False

    def __init__(self, target: UrlTarget, settings: EncodeSettings = EncodeSettings(), *,
                 lossless: bool = False) -> None:
        self.target = target
        self.video = VideoOutput(target, settings, wants_packets=False)
        self.name = target.name
        self.policy = Policy.BLOCK if lossless else Policy.DROP_OLDEST
        self.accepts: frozenset[Layout] = self.video.accepts
        self.failures = 0  # connections that failed or broke
        self.unsent = 0  # frames that came while there was no connection
        self._retry_at = 0.0

    def open(self, info: StreamInfo) -> None:
        """Choose the encoder for the stream; the connection is made when the first frame
        comes."""
        self.video.describe(info)

    def write(self, output: Output) -> None:
        if self.video.muxer.container is None and not self._connect():
            self.unsent += 1
            return
        try:
            self.video.write_frame(output.enhanced)
        except SinkError as error:
            self._drop_connection(error)
            self.unsent += 1

    def _connect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            self.video.connect()
        except SinkError as error:
            self._drop_connection(error)
            return False
        return True

    def _drop_connection(self, error: SinkError) -> None:
        if not self.failures:
            log.warning("%s; retrying every %g s", error, RETRY_S)
        self.failures += 1
        self._retry_at = time.monotonic() + RETRY_S
        self.video.muxer.drop()

    def write_packet(self, packet: Passthrough) -> None:
        """No packets: a stream carries the video only."""

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        self.video.close(error)
