"""An output container's life, whatever fills its video: a :class:`Target` (a file, a network
URL, an HLS playlist, a segment) opens the container and says which encoder options suit it;
the :class:`Muxer` copies the input's other streams, chapters and attachments into it, writes
the header (refusing muxer options FFmpeg did not take), muxes packets and writes the trailer.

Packets of the passthrough streams are muxed as they arrive (held until the header is
written), each through its track (tracks.py: copied, or audio encoded again: audio.py), and
FFmpeg's interleaving muxer orders them by time.
"""

from __future__ import annotations

import ast
import contextlib
import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import av.container
import av.stream

from streamer.errors import ConfigError, SinkError
from streamer.frames import Passthrough, StreamInfo
from streamer.sinks.audio import audio_track, codec_name, containers_holding
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.tracks import CopiedTrack, Packets, Track, holds

__all__ = ["Muxer", "Packets", "Target"]

log = logging.getLogger(__name__)
_TIMECODE_MUXERS = {"mov", "mp4", "ipod", "ismv", "3gp", "3g2", "matroska", "webm", "mxf",
                    "mxf_d10", "mxf_opatom", "dv"}


class Target(Protocol):
    """Where an output's container goes."""

    @property
    def name(self) -> str:
        """Names the output in the summary and in logs (file, udp, srt, hls, segment, ...)."""

    @property
    def label(self) -> str:
        """The target as given (a path, a URL), for messages."""

    @property
    def named_for(self) -> str:
        """The file name whose container decides an ``auto`` codec (VP9 for .webm)."""

    def prepare(self) -> None:
        """Before the output opens (an HLS folder is made)."""

    def open_container(self, settings: EncodeSettings) -> av.container.OutputContainer:
        """Open the container (SinkError when it cannot be, ConfigError when it never can)."""

    def encoder_options(self, options: dict[str, str], codec: str, rate: Fraction | None,
                        settings: EncodeSettings) -> dict[str, str]:
        """The encoder's options for this target, from the settings' own ``options``."""

    def discard(self) -> None:
        """An output that got no frame: remove what its container left (a file)."""

    @property
    def written(self) -> Path | None:
        """The file to read back once the container is closed (None: a stream)."""


class Muxer:
    """One container at a time of ``target`` (a network output reopens it after a failure)."""

    def __init__(self, target: Target, settings: EncodeSettings) -> None:
        self.target = target
        self.settings = settings
        self.container: av.container.OutputContainer | None = None
        self.format_name: str | None = None  # the muxer of the last container closed
        self.finished = False  # the last container closed got its trailer
        self._reset()

    def _reset(self) -> None:
        self.started = False  # the header is written (with the first frame)
        self._tracks: dict[int, Track] = {}  # by input stream index
        self._pending_packets: Packets = []

    def open(self, info: StreamInfo | None) -> av.container.OutputContainer:
        """Open the target's container, with the input's tags (``info``), or bare (a network
        output connecting)."""
        self._reset()
        self.container = self.target.open_container(self.settings)
        if info is not None:
            self.container.metadata.update(info.metadata)  # title, creation time, ...
        return self.container

    def copy_streams(self, info: StreamInfo) -> None:
        """Copy the input's passthrough streams, chapters and attachments (after the video
        stream, as in the input)."""
        for stream in info.passthrough:
            self._copy_stream(stream)
        self._copy_extras(info)

    def _copy_stream(self, stream: av.stream.Stream) -> None:
        """Copy a passthrough stream's parameters (it belongs to the open input). Audio is
        copied, decoded to the same samples or transcoded as audio.py decides, or refused
        (AAC into WebM); subtitles and data the container cannot hold are left out, saying
        so."""
        assert self.container is not None
        label, muxer = self.target.label, self.container.format.name
        if stream.type == "audio":
            self._tracks[stream.index] = audio_track(self.container, stream,
                                                     self.settings.audio_codec, label)
            return
        if holds(muxer, lambda c: CopiedTrack.add(c, stream)):
            self._tracks[stream.index] = CopiedTrack(self.container, stream)
            return
        what = f"the input's {stream.type} {codec_name(stream)} (stream #{stream.index})"
        log.warning("%s: a %s file cannot hold %s: left out (%s)", label, muxer, what,
                    containers_holding(stream, muxer))

    def _copy_extras(self, info: StreamInfo) -> None:
        """Chapters (where the muxer writes them) and attachments (Matroska only); the
        timecode is the video stream's tag (the encoder's or the join's), written as a tmcd
        track by MOV/MP4, as a tag by Matroska, MXF and DV, and by nothing else (said once)."""
        assert self.container is not None
        muxer = self.container.format.name
        if info.timecode and muxer not in _TIMECODE_MUXERS:
            log.warning("%s: a %s file has no place for the input's timecode %s: left out "
                        "(.mov, .mp4, .mkv, .mxf and .dv keep it)", self.target.label, muxer,
                        info.timecode)
        if info.chapters:
            self.container.set_chapters(list(info.chapters))
        if not info.attachments:
            return
        if self.container.format.name != "matroska":
            log.warning("%s: a %s file holds no attachments: %s left out (.mkv keeps them)",
                        self.target.label, self.container.format.name,
                        ", ".join(a.name for a in info.attachments))
            return
        for attachment in info.attachments:
            self.container.add_attachment(*attachment)

    def start(self, *, refuse_unused: bool = True) -> None:
        """Write the header (muxers may change stream time bases then, and a packet muxed
        before that would be rebased with the old one: EINVAL, "non monotonic dts"), then what
        was held. ``refuse_unused``: a muxer option FFmpeg did not take is a ConfigError."""
        assert self.container is not None
        label = self.target.label
        for track in self._tracks.values():
            track.before_header()
        unused = _UnusedOptions()
        logging.getLogger("av.container.output").addHandler(unused)
        try:
            self.container.start_encoding()
        except av.error.ProtocolNotFoundError:
            scheme = label.split("://", 1)[0]
            raise ConfigError(f"this FFmpeg build cannot write {scheme}:// streams "
                              f"({label})") from None
        except (av.error.FFmpegError, ValueError) as error:
            raise SinkError(f"cannot start writing {label}: {error}") from error
        finally:
            logging.getLogger("av.container.output").removeHandler(unused)
        self.started = True
        refused = sorted(set(unused.names) & set(self.settings.muxer_options))
        if refuse_unused and refused:
            muxer = self.container.format.name
            raise ConfigError(f"the {muxer} muxer has no option {', '.join(map(repr, refused))}"
                              f" (see `ffmpeg -h muxer={muxer}`)")
        pending, self._pending_packets = self._pending_packets, []
        self.mux(pending)

    def write_packet(self, packet: Passthrough) -> None:
        """Copy one audio or subtitle packet of the input stream it came from (or encode its
        sound again)."""
        track = self._tracks.get(packet.stream_index)
        if track is None:
            return
        try:
            packets = track.packets(packet.packet)
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot write {self.target.label}: {error}") from error
        if not self.started:
            self._pending_packets.extend(packets)  # the header comes with the first frame
            return
        self.mux(packets)

    def mux(self, packets: Packets) -> None:
        assert self.container is not None
        try:
            self.container.mux(packets)
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot write {self.target.label}: {error}") from error

    def close(self, error: BaseException | None = None,
              last: Callable[[], Packets] | None = None) -> None:
        """Mux ``last`` (what an encoder still holds) and what the tracks hold, and write the
        trailer (safe to call twice). After a failure elsewhere (``error``) the container is
        still finished, so what was written plays, and a failure to finish it is logged
        rather than raised over the first one."""
        container, self.container = self.container, None
        if container is None:
            return
        self.format_name = container.format.name
        self.finished = False
        try:
            try:
                if last is not None and self.started:
                    container.mux(last())
                if self.started:
                    for track in self._tracks.values():
                        container.mux(track.flush())
            finally:
                container.close()  # the trailer
            self.finished = True
        except (av.error.FFmpegError, OSError) as failure:
            if error is None:
                raise SinkError(f"cannot finish {self.target.label}: {failure}") from failure
            log.warning("cannot finish %s: %s", self.target.label, failure)

    def drop(self) -> None:
        """Close a broken connection's container, unfinished."""
        container, self.container = self.container, None
        if container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):  # already broken
                container.close()


class _UnusedOptions(logging.Handler):
    """Collects the options no one took when a header is written: PyAV reports them only as
    a log line ("Some options were not used: {...}"), and FFmpeg's verdict is the one to
    give (an option name checked here would go stale with FFmpeg's)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        head, _, options = message.partition(": ")
        if head == "Some options were not used":
            with contextlib.suppress(ValueError, SyntaxError):
                self.names.extend(ast.literal_eval(options))
