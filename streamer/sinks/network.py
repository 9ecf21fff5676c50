"""Network video outputs: MPEG-TS over UDP or SRT, RTMP (FLV), RTSP push, and HLS into a folder.

Fed by a live source they drop their oldest queued frame when they fall behind (counted), so a
slow or dead receiver never stalls inference or the other outputs; fed by a file they lose
nothing (``lossless``), as a file output does. The container is opened in
the output's own thread when the first frame arrives (an SRT listener, say, waits there for its
caller while frames drop), and a connection that fails is reopened after a pause, with a fresh
encoder, counting the frames lost meanwhile. The encoder is tuned for latency (x264's
``zerolatency``) with a keyframe every two seconds, so a viewer that joins sees a picture soon.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import av
import av.container

from streamer.errors import ConfigError, SinkError
from streamer.frames import StreamInfo
from streamer.queues import Policy
from streamer.sinks.av_output import AvOutput, EncodeSettings
from streamer.sinks.base import Output
from streamer.sinks.file import FileSink

__all__ = ["HlsOutput", "NetworkOutput", "default_format", "video_output"]

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


class NetworkOutput(AvOutput):
    """Streams the enhanced frames to ``url`` in ``format`` (default: by the URL's scheme)."""

    wants_packets = False

    def __init__(self, url: str, settings: EncodeSettings = EncodeSettings(), *,
                 format: str | None = None, options: dict[str, str] | None = None,
                 lossless: bool = False) -> None:
        super().__init__(url, settings)
        self.policy = Policy.BLOCK if lossless else Policy.DROP_OLDEST
        self.format = format or default_format(url)
        if self.format not in av.formats_available:
            raise ConfigError(f"output {url!r}: this FFmpeg has no {self.format!r} muxer")
        self.options = dict(options or {})
        if self.format == "rtsp":
            self.options.setdefault("rtsp_transport", "tcp")
        self.name = url.split("://", 1)[0].lower()
        self.failures = 0  # connections that failed or broke
        self.unsent = 0  # frames that came while there was no connection
        self._retry_at = 0.0

    def _open_container(self) -> av.container.OutputContainer:
        """Connect (some protocols connect only when the header is written: AvOutput's
        ``_start_video``); SinkError is tried again later, ConfigError (this FFmpeg cannot
        write the protocol at all) stops the stream."""
        try:
            return av.open(self.target, "w", format=self.format,
                           options={**self.options, **self.settings.muxer_options},
                           timeout=(5.0, 5.0))
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot open {self.target}: {error}") from error

    def _encoder_options(self) -> dict[str, str]:
        options = super()._encoder_options()
        if self.codec.startswith("libx26"):
            options.setdefault("tune", "zerolatency")
        if self._frame_rate:
            options["g"] = str(max(1, round(2 * self._frame_rate)))
        return options

    def open(self, info: StreamInfo) -> None:
        """Remember the stream; the connection is made when the first frame comes."""
        self._describe(info)

    def write(self, output: Output) -> None:
        if self._container is None and not self._connect():
            self.unsent += 1
            return
        try:
            self.write_frame(output.enhanced)
        except SinkError as error:
            self._drop_connection(error)
            self.unsent += 1

    def _connect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        self._reset()
        try:
            self._container = self._open_container()
        except SinkError as error:
            self._drop_connection(error)
            return False
        return True

    def _drop_connection(self, error: SinkError) -> None:
        if not self.failures:
            log.warning("%s; retrying every %g s", error, RETRY_S)
        self.failures += 1
        self._retry_at = time.monotonic() + RETRY_S
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except (av.error.FFmpegError, OSError):
                pass  # the connection is already broken


class HlsOutput(NetworkOutput):
    """HLS: the ``playlist`` (``.m3u8``) and two-second MPEG-TS segments beside it, the last six
    kept (older ones deleted); the playlist is finished (``#EXT-X-ENDLIST``) when the run
    ends. A folder given instead of a playlist gets ``index.m3u8``."""

    def __init__(self, playlist: str | Path, settings: EncodeSettings = EncodeSettings(), *,
                 segment_s: float = 2.0, keep: int = 6, lossless: bool = False) -> None:
        playlist = Path(playlist)
        if playlist.suffix != ".m3u8":
            playlist = playlist / "index.m3u8"
        self.folder = playlist.parent
        options = {"hls_time": f"{segment_s:g}", "hls_list_size": str(keep),
                   "hls_flags": "delete_segments+independent_segments",
                   "hls_segment_filename": str(self.folder / f"{playlist.stem}%05d.ts")}
        super().__init__(str(playlist), settings, format="hls", options=options,
                         lossless=lossless)
        self.name = "hls"

    def open(self, info: StreamInfo) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"cannot make the HLS folder {self.folder}: {error}") from error
        super().open(info)


def video_output(target: str, settings: EncodeSettings = EncodeSettings(), *,
                 live: bool = False) -> FileSink | NetworkOutput:
    """The output a target names: a URL (``udp://``, ``srt://``, ``rtmp://``, ``rtsp://``), an
    HLS playlist (``.m3u8``), or a file; ``live``: the source is live (network outputs may
    drop)."""
    if "://" in target:
        return NetworkOutput(target, settings, lossless=not live)
    if target.endswith(".m3u8"):
        return HlsOutput(target, settings, lossless=not live)
    return FileSink(target, settings)
