"""PyAV encode of the enhanced frames into any container FFmpeg writes: a file, a network
stream, an HLS playlist (see file.py and network.py for the two kinds of target).

Video pts are the input's (variable frame rate survives) in the input's time base; colour tags
are written to the stream and every frame. Packets of the passthrough streams are muxed as they
arrive, and FFmpeg's interleaving muxer orders them by time. ``close`` flushes the encoder and
writes the trailer.
"""

from __future__ import annotations

import ast
import contextlib
import logging
from dataclasses import dataclass, field
from fractions import Fraction

import av
import av.container
import cv2
import numpy as np

from streamer.errors import ConfigError, SinkError
from streamer.frames import (
    FIELD_BT,
    FIELD_TT,
    RGB,
    TRANSFER_BT709,
    Frame,
    Layout,
    Passthrough,
    StreamInfo,
    is_interlaced,
)
from streamer.media.convert import content_tags, rgb_image, stamp, to_video_frame
from streamer.sinks.base import Output
from streamer.sinks.formats import (
    AUTO,
    check_encoder_options,
    choose_codec,
    choose_pix_fmt,
    with_params,
)

__all__ = ["AvOutput", "EncodeSettings"]

log = logging.getLogger(__name__)
_CRF_RANGE = (0, 63)  # x264/x265 take 0-51, VP9/AV1 0-63
_CRF_CODECS = ("libx264", "libx265", "libvpx", "libaom", "libsvtav1")


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder settings (the YAML ``encode:`` section).

    ``codec`` and ``pix_fmt``: ``auto`` keeps what the input has (see formats.py: H.264, HEVC
    for HDR, VP9 into WebM; the input's chroma and bit depth). ``crf``: default 20 for the
    encoders that take one (x264/x265, VP9, AV1); a CRF for an encoder without one is refused
    rather than ignored; a ``bitrate`` (e.g. "8M") wins over it. ``preset``: the encoder's
    (x264/x265 default veryfast). ``encoder_options`` / ``muxer_options``: passed to FFmpeg,
    which checks them: a bad value or an option that does not apply is refused. ``fragmented``:
    write MP4/MOV files as fragments, playable after a crash (see file.py). ``side_by_side``:
    write input | enhanced (see compose.py)."""

    codec: str = AUTO
    crf: int | None = None
    preset: str | None = None
    bitrate: str | None = None
    pix_fmt: str = AUTO
    encoder_options: dict[str, str] = field(default_factory=dict)
    muxer_options: dict[str, str] = field(default_factory=dict)
    side_by_side: bool = False
    fragmented: bool = True

    def __post_init__(self) -> None:
        if self.codec != AUTO:
            try:
                codec = av.codec.Codec(self.codec, "w")
            except av.codec.codec.UnknownCodecError:
                raise ConfigError(f"codec {self.codec!r} is not an encoder of this FFmpeg "
                                  "build; e.g. libx264, libx265, libvpx-vp9") from None
            if codec.type != "video":
                raise ConfigError(f"codec {self.codec!r} encodes {codec.type}, not video")
        if self.pix_fmt != AUTO:
            try:
                av.VideoFormat(self.pix_fmt)
            except (ValueError, av.error.FFmpegError):
                raise ConfigError(f"pix_fmt {self.pix_fmt!r} is not a pixel format of this "
                                  "FFmpeg; e.g. yuv420p, yuv444p, yuv420p10le") from None
            if self.codec != AUTO:
                choose_pix_fmt(self.pix_fmt, self.codec, self.pix_fmt, TRANSFER_BT709)
        if self.crf is not None:
            if not _CRF_RANGE[0] <= self.crf <= _CRF_RANGE[1]:
                raise ConfigError(f"crf must be in {_CRF_RANGE[0]}..{_CRF_RANGE[1]}, "
                                  f"got {self.crf}")
            if self.codec != AUTO and not self.codec.startswith(_CRF_CODECS):
                raise ConfigError(f"codec {self.codec!r} takes no crf; give a bitrate (e.g. "
                                  f"8M) or use one of {', '.join(_CRF_CODECS)}...")
        if self.codec != AUTO:
            self.check_options(self.codec, "yuv420p" if self.pix_fmt == AUTO else self.pix_fmt)

    def effective_crf(self, codec: str) -> int | None:
        """The CRF ``codec`` gets: none with a bitrate (a bitrate wins over a preset's crf),
        else the one given, else 20 where the codec takes one."""
        if self.bitrate is not None:
            return None
        if self.crf is not None:
            return self.crf
        return 20 if codec.startswith(_CRF_CODECS) else None

    def options_for(self, codec: str) -> dict[str, str]:
        """The encoder's options: preset, CRF, then ``encoder_options`` (which win). A preset
        goes to the encoder named, or with ``codec: auto`` to x264/x265 only (whose names
        presets use; VP9 for a .webm takes none)."""
        options: dict[str, str] = {}
        if codec.startswith("libx26"):
            options["preset"] = self.preset or "veryfast"
        elif self.preset is not None and self.codec != AUTO:
            options["preset"] = self.preset
        crf = self.effective_crf(codec)
        if crf is not None:
            options["crf"] = str(crf)
        return {**options, **self.encoder_options}

    def check_options(self, codec: str, pix_fmt: str) -> None:
        """Let FFmpeg judge the options given for ``codec`` (a preset, encoder_options)."""
        if self.preset is not None or self.encoder_options:
            check_encoder_options(codec, pix_fmt, self.options_for(codec))


class AvOutput:
    """Encodes frames in arrival order into the container ``target`` names. Subclasses say how
    the container is opened (:meth:`_open_container`) and which encoder options suit it."""

    unsent = 0

    def __init__(self, target: str, settings: EncodeSettings) -> None:
        self.target = target
        self.settings = settings
        self.accepts = RGB | {Layout.I420} if settings.pix_fmt in (AUTO, "yuv420p") else RGB
        self.codec = settings.codec  # both resolved from the input in open()
        self.pix_fmt = settings.pix_fmt
        self.frames_written = 0
        self.resized_frames = 0
        self._frame_rate: Fraction | None = None
        self._container: av.container.OutputContainer | None = None
        self._video_metadata: dict[str, str] = {}
        self._sample_aspect_ratio: Fraction | None = None
        self._field_order = 0
        self._reset()

    def _reset(self) -> None:
        """Forget the container's streams (before a container is opened or reopened)."""
        self._video: av.VideoStream | None = None
        self._started = False  # the header is written (with the first frame)
        self._stream_map: dict[int, av.stream.Stream] = {}
        self._pending_packets: list[av.Packet[av.stream.Stream]] = []
        self._last_pts: int | None = None
        self._time_base = Fraction(1, 90_000)  # the input's, set with the first frame

    def _open_container(self) -> av.container.OutputContainer:
        raise NotImplementedError

    def _encoder_options(self) -> dict[str, str]:
        """Codec options from the settings (CRF only for encoders that take it); x264 codes
        an interlaced input's fields as fields, in its order (others only tag it)."""
        options = self.settings.options_for(self.codec)
        if is_interlaced(self._field_order) and self.codec == "libx264":
            options.setdefault("flags", "+ilme+ildct")
            options.setdefault("top", "1" if self._field_order in (FIELD_TT, FIELD_BT) else "0")
        return options

    def _named_for(self) -> str:
        """The file name whose container decides an ``auto`` codec (VP9 for .webm)."""
        return self.target

    def _describe(self, info: StreamInfo) -> None:
        """Learn the stream and choose the encoder and pixel format for it (auto: what keeps
        the input's chroma, depth and HDR); ConfigError when the settings cannot."""
        self._frame_rate = info.rate
        self._sample_aspect_ratio = info.sample_aspect_ratio
        self._video_metadata = info.video_metadata  # language, handler name
        self._field_order = info.field_order
        self.codec = choose_codec(self.settings.codec, self._named_for(), info.hdr)
        self.pix_fmt = choose_pix_fmt(self.settings.pix_fmt, self.codec, info.pixel_format,
                                      info.transfer)
        if self.settings.codec == AUTO:
            if self.settings.crf is not None and not self.codec.startswith(_CRF_CODECS):
                raise ConfigError(f"codec {self.codec} takes no crf")
            self.settings.check_options(self.codec, self.pix_fmt)

    def open(self, info: StreamInfo) -> None:
        self._describe(info)
        self._container = self._open_container()
        self._container.metadata.update(info.metadata)  # title, creation time, ...
        if info.width and info.height:  # the video stream first, as in the input
            self._add_video(info.width, info.height)
        for stream in info.passthrough:
            self._copy_stream(stream)
        self._copy_extras(info)

    def _copy_stream(self, stream: av.stream.Stream) -> None:
        """Copy a passthrough stream's parameters (it belongs to the open input). Audio the
        container cannot hold is an error (AAC into WebM); subtitles and data it cannot hold
        are left out, saying so."""
        assert self._container is not None
        muxer = self._container.format.name
        try:
            copy = self._container.add_stream_from_template(stream)
        except ValueError:  # the muxer knows it cannot hold this codec
            codec = stream.codec_context.name if stream.codec_context else "data"
            what = f"the input's {stream.type} {codec} (stream #{stream.index})"
            if stream.type == "audio":
                raise ConfigError(f"{self.target}: a {muxer} file cannot hold {what}; write "
                                  ".mkv (which holds any codec) or .mp4") from None
            log.warning("%s: a %s file cannot hold %s: left out (.mkv can hold it)",
                        self.target, muxer, what)
            return
        copy.metadata.update(content_tags(stream.metadata))
        self._stream_map[stream.index] = copy

    def _copy_extras(self, info: StreamInfo) -> None:
        """Chapters (where the muxer writes them) and attachments (Matroska only)."""
        assert self._container is not None
        if info.chapters:
            self._container.set_chapters(list(info.chapters))
        if not info.attachments:
            return
        if self._container.format.name != "matroska":
            log.warning("%s: a %s file holds no attachments: %s left out (.mkv keeps them)",
                        self.target, self._container.format.name,
                        ", ".join(a.name for a in info.attachments))
            return
        for attachment in info.attachments:
            self._container.add_attachment(*attachment)

    def write(self, output: Output) -> None:
        self.write_frame(output.enhanced)

    def write_frame(self, frame: Frame) -> None:
        """Encode one frame (RGB or, with pix_fmt yuv420p, I420)."""
        if not self._started:
            self._start(frame)
        assert self._video is not None and self._container is not None
        image, layout = frame.image, frame.layout
        if layout is Layout.I420 and (frame.width, frame.height) != (self._video.width,
                                                                    self._video.height):
            image, layout = rgb_image(frame), Layout.RGB24  # the size changed: scale in RGB
        if layout.is_rgb:
            image = self._fit(image)
        video_frame = to_video_frame(image, layout, frame.tags, self.pix_fmt)
        video_frame.pts = self._pts(frame)
        video_frame.time_base = self._time_base
        if self._forces_keyframe(frame):
            video_frame.pict_type = av.video.frame.PictureType.I
        try:
            packets = self._video.encode(video_frame)
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot encode frame {frame.seq} for {self.target}: {error}"
                            ) from error
        self._mux(self._kept(packets))
        self.frames_written += 1

    def _forces_keyframe(self, frame: Frame) -> bool:
        """Whether ``frame`` must start a GOP (segments: see jobs/segments.py)."""
        return False

    def _kept(self, packets: list[av.Packet[av.stream.Stream]]
              ) -> list[av.Packet[av.stream.Stream]]:
        """The encoded video packets to write (all of them; segments keep their own)."""
        return packets

    def write_packet(self, packet: Passthrough) -> None:
        """Copy one audio or subtitle packet of the input stream it came from."""
        target = self._stream_map.get(packet.stream_index)
        if target is None:
            return
        packet.packet.stream = target
        if not self._started:
            self._pending_packets.append(packet.packet)  # the header comes with the first frame
            return
        self._mux([packet.packet])

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        """Flush the encoder and write the trailer (safe to call twice). After a failure
        elsewhere (``error``) the output is still finished, so what was written plays, and a
        failure to finish it is logged rather than raised over the first one."""
        container, self._container = self._container, None
        if container is None:
            return
        try:
            if self._video is not None and self._started:
                container.mux(self._kept(self._video.encode()))
        except (av.error.FFmpegError, OSError) as failure:
            if error is None:
                raise SinkError(f"cannot finish {self.target}: {failure}") from failure
            log.warning("cannot finish %s: %s", self.target, failure)
        finally:
            container.close()
        if self.resized_frames:
            log.warning("%s: %d frames were scaled to %dx%d (the input changed size mid-stream)",
                        self.target, self.resized_frames, self._video.width if self._video else 0,
                        self._video.height if self._video else 0)

    # -- internals ----------------------------------------------------------------------------
    def _even(self, width: int, height: int) -> tuple[int, int]:
        """4:2:0 needs even sizes: pad by one line rather than lose the last row or column."""
        if self.pix_fmt.startswith(("yuv420", "nv12")):
            return width + width % 2, height + height % 2
        return width, height

    def _add_video(self, width: int, height: int) -> None:
        assert self._container is not None
        s = self.settings
        try:
            video = self._container.add_stream(self.codec, rate=self._frame_rate,
                                               options=self._encoder_options())
        except (av.error.FFmpegError, ValueError) as error:
            raise SinkError(f"cannot use codec {self.codec!r}: {error}") from error
        assert isinstance(video, av.VideoStream)  # EncodeSettings checked it encodes video
        video.width, video.height = self._even(width, height)
        video.pix_fmt = self.pix_fmt
        video.metadata.update(self._video_metadata)
        if is_interlaced(self._field_order):
            video.codec_context.field_order = self._field_order
        # Frame threads on all cores, as the ffmpeg tool does (PyAV's default, slice threads,
        # trades throughput for latency a file does not need).
        video.codec_context.thread_type = "FRAME"
        video.codec_context.thread_count = 0
        if s.bitrate is not None:
            video.bit_rate = _parse_bitrate(s.bitrate)
        self._video = video

    def _start(self, first: Frame) -> None:
        """Fit the video stream to the first frame (its size, time base and colour tags), then
        write the header."""
        assert self._container is not None
        if self._video is None:
            self._add_video(first.width, first.height)
        video = self._video
        assert video is not None
        video.width, video.height = self._even(first.width, first.height)
        time_base = first.time_base or self._time_base
        self._time_base = time_base
        video.time_base = time_base
        video.codec_context.time_base = time_base
        stamp(first.tags, video.codec_context)
        hdr_params = first.hdr.encoder_params() if first.hdr is not None else ""
        video.codec_context.options = with_params(self.codec, video.codec_context.options,
                                                  hdr_params)
        if hdr_params and self.codec not in ("libx264", "libx265"):
            log.warning("%s: %s cannot write the input's mastering display metadata "
                        "(libx265 and libx264 can)", self.target, self.codec)
        if self._sample_aspect_ratio is not None:
            video.sample_aspect_ratio = self._sample_aspect_ratio
        if first.rotation:
            video.set_display_rotation(first.rotation)
        # Write the header now: muxers may change stream time bases then, and a packet muxed
        # before that would be rebased with the old one (EINVAL, "non monotonic dts").
        unused = _UnusedOptions()
        logging.getLogger("av.container.output").addHandler(unused)
        try:
            self._container.start_encoding()
        except av.error.ProtocolNotFoundError:
            scheme = self.target.split("://", 1)[0]
            raise ConfigError(f"this FFmpeg build cannot write {scheme}:// streams "
                              f"({self.target})") from None
        except (av.error.FFmpegError, ValueError) as error:
            raise SinkError(f"cannot start writing {self.target}: {error}") from error
        finally:
            logging.getLogger("av.container.output").removeHandler(unused)
        self._started = True
        refused = sorted(set(unused.names) & set(self.settings.muxer_options))
        if refused:
            raise ConfigError(f"the {self._container.format.name} muxer has no option "
                              f"{', '.join(map(repr, refused))} (see `ffmpeg -h muxer="
                              f"{self._container.format.name}`)")
        pending, self._pending_packets = self._pending_packets, []
        self._mux(pending)

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """Match the encoder's size: repeat the last row/column of an odd-sized frame (4:2:0
        needs even sizes), or scale a frame whose size changed mid-stream (an encoder cannot
        change size), counting those."""
        assert self._video is not None
        width, height = self._video.width, self._video.height
        pad_h, pad_w = height - image.shape[0], width - image.shape[1]
        if pad_h == 0 and pad_w == 0:
            return image
        if pad_h in (0, 1) and pad_w in (0, 1) and self.resized_frames == 0:
            return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        self.resized_frames += 1
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    def _pts(self, frame: Frame) -> int:
        """The input pts; synthesised from the frame rate only when the input has none."""
        if frame.pts is not None and (self._last_pts is None or frame.pts > self._last_pts):
            pts = frame.pts
        elif self._last_pts is None:
            pts = 0
        else:
            pts = self._last_pts + self._frame_duration()
        self._last_pts = pts
        return pts

    def _frame_duration(self) -> int:
        assert self._video is not None
        rate = self._frame_rate or Fraction(25)
        return max(1, round(1 / (rate * self._time_base)))

    def _mux(self, packets: list[av.Packet[av.stream.Stream]]) -> None:
        assert self._container is not None
        try:
            self._container.mux(packets)
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot write {self.target}: {error}") from error


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


def _parse_bitrate(text: str) -> int:
    units = {"k": 1_000, "m": 1_000_000}
    suffix = text[-1].lower()
    try:
        return int(float(text[:-1]) * units[suffix]) if suffix in units else int(text)
    except ValueError as error:
        raise SinkError(f"bitrate must look like 8M, 2500k or 800000, got {text!r}") from error
