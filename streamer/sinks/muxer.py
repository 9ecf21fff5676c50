"""An output container's life, whatever fills its video: a :class:`Target` (a file, a network
URL, an HLS playlist, a segment) opens the container and says which encoder options suit it;
the :class:`Muxer` copies the input's other streams, chapters and attachments into it, writes
the header (refusing muxer options FFmpeg did not take), muxes packets and writes the trailer.

Packets of the passthrough streams are muxed as they arrive (held until the header is
written), and FFmpeg's interleaving muxer orders them by time.
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Protocol, TypeAlias

import av
import av.container
import av.stream

from streamer.errors import ConfigError, SinkError
from streamer.frames import Passthrough, StreamInfo
from streamer.media.convert import content_tags
from streamer.sinks.encoder import EncodeSettings

__all__ = ["Muxer", "Target"]

log = logging.getLogger(__name__)
_TIMECODE_MUXERS = {"mov", "mp4", "ipod", "ismv", "3gp", "3g2", "matroska", "webm", "mxf",
                    "mxf_d10", "mxf_opatom"}
Packets: TypeAlias = "list[av.Packet[av.stream.Stream]]"  # noqa: UP040 (PyAV's Packet is not
# subscriptable at run time)


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

    def encoder_options(self, options: dict[str, str], codec: str, rate: Fraction | None
                        ) -> dict[str, str]:
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
        self._reset()

    def _reset(self) -> None:
        self.started = False  # the header is written (with the first frame)
        self._stream_map: dict[int, av.stream.Stream] = {}
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
        """Copy a passthrough stream's parameters (it belongs to the open input). Audio the
        container cannot hold is an error (AAC into WebM); subtitles and data it cannot hold
        are left out, saying so."""
        assert self.container is not None
        label, muxer = self.target.label, self.container.format.name
        if holds(muxer, stream):
            copy = self.container.add_stream_from_template(stream)
            copy.metadata.update(content_tags(stream.metadata))
            self._stream_map[stream.index] = copy
            return
        what = f"the input's {stream.type} {_codec_name(stream)} (stream #{stream.index})"
        others = [f".{extension}" for extension, other in _OTHER_CONTAINERS
                  if other != muxer and holds(other, stream)]
        where = f"{' or '.join(others[:2])} can hold it" if others else "no container here can"
        if stream.type == "audio":
            raise ConfigError(f"{label}: a {muxer} file cannot hold {what}; {where}")
        log.warning("%s: a %s file cannot hold %s: left out (%s)", label, muxer, what, where)

    def _copy_extras(self, info: StreamInfo) -> None:
        """Chapters (where the muxer writes them) and attachments (Matroska only); the
        timecode is the video stream's tag (the encoder's or the join's), written as a tmcd
        track by MOV/MP4, as a tag by Matroska and MXF, and by nothing else (said once)."""
        assert self.container is not None
        muxer = self.container.format.name
        if info.timecode and muxer not in _TIMECODE_MUXERS:
            log.warning("%s: a %s file has no place for the input's timecode %s: left out "
                        "(.mov, .mp4, .mkv and .mxf keep it)", self.target.label, muxer,
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
        """Copy one audio or subtitle packet of the input stream it came from."""
        target = self._stream_map.get(packet.stream_index)
        if target is None:
            return
        packet.packet.stream = target
        if not self.started:
            self._pending_packets.append(packet.packet)  # the header comes with the first frame
            return
        self.mux([packet.packet])

    def mux(self, packets: Packets) -> None:
        assert self.container is not None
        try:
            self.container.mux(packets)
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot write {self.target.label}: {error}") from error

    def close(self, error: BaseException | None = None,
              last: Callable[[], Packets] | None = None) -> None:
        """Mux ``last`` (what an encoder still holds) and write the trailer (safe to call
        twice). After a failure elsewhere (``error``) the container is still finished, so
        what was written plays, and a failure to finish it is logged rather than raised over
        the first one."""
        container, self.container = self.container, None
        if container is None:
            return
        self.format_name = container.format.name
        try:
            try:
                if last is not None and self.started:
                    container.mux(last())
            finally:
                container.close()  # the trailer
        except (av.error.FFmpegError, OSError) as failure:
            if error is None:
                raise SinkError(f"cannot finish {self.target.label}: {failure}") from failure
            log.warning("cannot finish %s: %s", self.target.label, failure)

    def drop(self) -> None:
        """Close a broken connection's container, unfinished."""
        container, self.container = self.container, None
        if container is not None:
            try:
                container.close()
            except (av.error.FFmpegError, OSError):
                pass  # the connection is already broken


_OTHER_CONTAINERS = (("mkv", "matroska"), ("mov", "mov"), ("mp4", "mp4"), ("ts", "mpegts"),
                     ("avi", "avi"))


def _codec_name(stream: av.stream.Stream) -> str:
    if stream.codec_context is not None:
        return str(stream.codec_context.name)
    return str(getattr(stream, "name", None) or "data")


def holds(muxer: str, stream: av.stream.Stream) -> bool:
    """A ``muxer`` file can take a copy of ``stream``: PyAV's check of the codec, then a
    header written in memory with it (MOV refuses FLAC and Opus only there, Matroska a
    GoPro gpmd track), so that one stream a container cannot hold is named, rather than the
    whole file refused with FFmpeg's "Invalid argument"."""
    try:
        trial = av.open(io.BytesIO(), "w", format=muxer)
    except (av.error.FFmpegError, ValueError, OSError):
        return False
    try:
        trial.add_stream_from_template(stream)
        trial.start_encoding()
    except (av.error.FFmpegError, ValueError, OSError):
        return False
    finally:
        with contextlib.suppress(av.error.FFmpegError, ValueError, OSError):
            trial.close()  # a trailer with no packet may fail: the header is what counts
    return True


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
