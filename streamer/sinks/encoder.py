"""PyAV encoding of the enhanced frames: :class:`EncodeSettings` (the YAML ``encode:``
section) and the :class:`Encoder`, which chooses the codec and pixel format for a stream, adds
the video stream to an output's container, and turns frames into packets. Where the packets go
is a muxer's business (muxer.py); an output is an encoder plus a muxer target (video.py).

Video pts are the input's (variable frame rate survives) in the input's time base, or in the
frame period where that cannot be written (formats.py: AVI, MPEG-4 Part 2 from 90 kHz); colour
tags are written to the stream and every frame.
"""

from __future__ import annotations

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
    StreamInfo,
    is_interlaced,
)
from streamer.media.convert import rgb_image, stamp, to_video_frame
from streamer.sinks.audio import COPY
from streamer.sinks.formats import (
    AUTO,
    check_encoder_options,
    choose_codec,
    choose_pix_fmt,
    encoder_time_base,
    frame_timed,
    with_params,
)

__all__ = ["EncodeSettings", "Encoder"]

log = logging.getLogger(__name__)
_CRF_RANGE = (0, 63)  # x264/x265 take 0-51, VP9/AV1 0-63
_CRF_CODECS = ("libx264", "libx265", "libvpx", "libaom", "libsvtav1")
_QP2LAMBDA = 118  # FFmpeg's FF_QP2LAMBDA: global_quality is a quantiser in lambda units


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder settings (the YAML ``encode:`` section).

    ``codec`` and ``pix_fmt``: ``auto`` keeps what the input has (see formats.py: H.264, HEVC
    for HDR, VP9 into WebM; the input's chroma and bit depth). ``crf``: default 20 for the
    encoders that take one (x264/x265, VP9, AV1); a CRF for an encoder without one is refused
    rather than ignored; a ``bitrate`` (e.g. "8M") wins over it. ``preset``: the encoder's
    (x264/x265 default veryfast). ``encoder_options`` / ``muxer_options``: passed to FFmpeg,
    which checks them: a bad value or an option that does not apply is refused. ``fragmented``:
    write MP4/MOV files as fragments, playable after a crash (see containers.py).
    ``side_by_side``: write input | enhanced (see compose.py). ``audio_codec``: ``copy`` (the
    input's audio as it is, where the container holds it) or an audio encoder for every track
    (see audio.py). ``format``: the muxer (ffmpeg's ``-f``: ``matroska``, ``mpegts``, ...),
    for a pipe, which has no extension to go by; None: by the output's extension.
    """

    codec: str = AUTO
    crf: int | None = None
    preset: str | None = None
    bitrate: str | None = None
    pix_fmt: str = AUTO
    encoder_options: dict[str, str] = field(default_factory=dict)
    muxer_options: dict[str, str] = field(default_factory=dict)
    side_by_side: bool = False
    fragmented: bool = True
    audio_codec: str = COPY
    format: str | None = None

    def __post_init__(self) -> None:
        _check_audio_codec(self.audio_codec)
        if self.format is not None:
            try:
                av.format.ContainerFormat(self.format, "w")
            except ValueError:
                raise ConfigError(f"format {self.format!r} is not a muxer of this FFmpeg build; "
                                  "e.g. matroska, mpegts, nut, mp4, webm") from None
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
        if self.bitrate is not None:
            parse_bitrate(self.bitrate)  # at load, not when the first file opens
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
        elif codec == "mpeg4" and self.bitrate is None:  # constant quality (q 3), not 200k
            options.update({"flags": "+qscale", "global_quality": str(3 * _QP2LAMBDA)})
        return {**options, **self.encoder_options}

    def check_options(self, codec: str, pix_fmt: str) -> None:
        """Let FFmpeg judge the options given for ``codec`` (a preset, encoder_options)."""
        if self.preset is not None or self.encoder_options:
            check_encoder_options(codec, pix_fmt, self.options_for(codec))


def _check_audio_codec(name: str) -> None:
    if name == COPY:
        return
    try:
        codec = av.codec.Codec(name, "w")
    except av.codec.codec.UnknownCodecError:
        raise ConfigError(f"audio_codec {name!r} is not an encoder of this FFmpeg build; "
                          "e.g. copy (the default), aac, libopus, flac") from None
    if codec.type != "audio":
        raise ConfigError(f"audio_codec {name!r} encodes {codec.type}, not audio; e.g. aac")


class Encoder:
    """Encodes frames in arrival order for the output ``label`` names: :meth:`describe` chooses
    the codec and pixel format from the input, :meth:`add_stream` adds the video stream to a
    container, :meth:`start` fits it to the first frame (before the container's header is
    written), :meth:`encode` and :meth:`flush` give packets."""

    def __init__(self, settings: EncodeSettings, label: str) -> None:
        self.settings = settings
        self.label = label
        self.accepts = RGB | {Layout.I420} if settings.pix_fmt in (AUTO, "yuv420p") else RGB
        self.codec = settings.codec  # both resolved from the input in describe()
        self.pix_fmt = settings.pix_fmt
        self.resized_frames = 0
        self.frame_rate: Fraction | None = None
        self.video_metadata: dict[str, str] = {}
        self._sample_aspect_ratio: Fraction | None = None
        self._field_order = 0
        self.reset()

    def reset(self) -> None:
        """Forget the video stream (before a container is opened or reopened)."""
        self.stream: av.VideoStream | None = None
        self._last_pts: int | None = None  # in the input's time base
        self._last_written: int | None = None  # in the encoder's
        self._input_time_base = Fraction(1, 90_000)  # both set with the first frame
        self._time_base = self._input_time_base
        self._origin = 0  # subtracted from written pts (the first frame's where AVI starts at 0)

    def options(self) -> dict[str, str]:
        """Codec options from the settings (CRF only for encoders that take it); x264 codes
        an interlaced input's fields as fields, in its order (others only tag it)."""
        options = self.settings.options_for(self.codec)
        if is_interlaced(self._field_order) and self.codec == "libx264":
            options.setdefault("flags", "+ilme+ildct")
            options.setdefault("top", "1" if self._field_order in (FIELD_TT, FIELD_BT) else "0")
        return options

    def describe(self, info: StreamInfo, named_for: str) -> None:
        """Learn the stream and choose the encoder and pixel format for it (auto: what keeps
        the input's chroma, depth and HDR; ``named_for``: the file name whose container
        decides an ``auto`` codec, VP9 for .webm); ConfigError when the settings cannot."""
        self.frame_rate = info.rate
        self._sample_aspect_ratio = info.sample_aspect_ratio
        self.video_metadata = info.video_metadata  # language, handler name
        self._field_order = info.field_order
        self.codec = choose_codec(self.settings.codec, named_for, info.hdr,
                                  self.settings.format)
        self.pix_fmt = choose_pix_fmt(self.settings.pix_fmt, self.codec, info.pixel_format,
                                      info.transfer)
        if self.settings.codec == AUTO:
            if self.settings.crf is not None and not self.codec.startswith(_CRF_CODECS):
                raise ConfigError(f"codec {self.codec} takes no crf")
            self.settings.check_options(self.codec, self.pix_fmt)

    def add_stream(self, container: av.container.OutputContainer, width: int, height: int,
                   options: dict[str, str]) -> None:
        """Add the video stream, with the encoder ``options`` (:meth:`options` as the target
        and the cut adjusted them)."""
        s = self.settings
        try:
            video = container.add_stream(self.codec, rate=self.frame_rate, options=options)
        except (av.error.FFmpegError, ValueError) as error:
            raise SinkError(f"cannot use codec {self.codec!r}: {error}") from error
        assert isinstance(video, av.VideoStream)  # EncodeSettings checked it encodes video
        video.width, video.height = self._even(width, height)
        video.pix_fmt = self.pix_fmt
        video.metadata.update(self.video_metadata)
        if is_interlaced(self._field_order):
            video.codec_context.field_order = self._field_order
        # Frame threads on all cores, as the ffmpeg tool does (PyAV's default, slice threads,
        # trades throughput for latency a file does not need).
        video.codec_context.thread_type = "FRAME"
        video.codec_context.thread_count = 0
        if s.bitrate is not None:
            video.bit_rate = parse_bitrate(s.bitrate)
        self.stream = video

    def start(self, first: Frame, muxer: str) -> None:
        """Fit the video stream to the first frame (its size, time base and colour tags), before
        the container's header is written; ``muxer``: the container's (AVI times frames by
        the frame rate)."""
        video = self.stream
        assert video is not None
        video.width, video.height = self._even(first.width, first.height)
        self._input_time_base = first.time_base or self._input_time_base
        self._time_base = encoder_time_base(self.codec, muxer, self._input_time_base,
                                            self.frame_rate)
        video.time_base = self._time_base
        video.codec_context.time_base = self._time_base
        if frame_timed(muxer) and first.pts is not None:
            self._origin = self._in_encoder_ticks(first.pts)
        stamp(first.tags, video.codec_context)
        hdr_params = first.hdr.encoder_params() if first.hdr is not None else ""
        video.codec_context.options = with_params(self.codec, video.codec_context.options,
                                                  hdr_params)
        if hdr_params and self.codec not in ("libx264", "libx265"):
            log.warning("%s: %s cannot write the input's mastering display metadata "
                        "(libx265 and libx264 can)", self.label, self.codec)
        if self._sample_aspect_ratio is not None:
            video.sample_aspect_ratio = self._sample_aspect_ratio
        if first.rotation:
            video.set_display_rotation(first.rotation)

    def encode(self, frame: Frame, *, keyframe: bool = False, offset: int = 0
               ) -> list[av.Packet[av.stream.Stream]]:
        """Encode one frame (RGB or, with pix_fmt yuv420p, I420); ``keyframe``: it must start
        a GOP; ``offset``: subtracted from its pts (a segment starts at 0)."""
        assert self.stream is not None
        image, layout = frame.image, frame.layout
        if layout is Layout.I420 and (frame.width, frame.height) != (self.stream.width,
                                                                    self.stream.height):
            image, layout = rgb_image(frame), Layout.RGB24  # the size changed: scale in RGB
        if layout.is_rgb:
            image = self._fit(image)
        video_frame = to_video_frame(image, layout, frame.tags, self.pix_fmt)
        video_frame.pts = self._written_pts(self._pts(frame) - offset)
        video_frame.time_base = self._time_base
        if keyframe:
            video_frame.pict_type = av.video.frame.PictureType.I
        try:
            packets = self.stream.encode(video_frame)
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot encode frame {frame.seq} for {self.label}: {error}"
                            ) from error
        return packets

    def flush(self) -> list[av.Packet[av.stream.Stream]]:
        """What the encoder still holds (FFmpegError/OSError as raised)."""
        assert self.stream is not None
        return self.stream.encode()

    def report(self) -> None:
        """Log what was scaled (at the end)."""
        if self.resized_frames:
            log.warning("%s: %d frames were scaled to %dx%d (the input changed size mid-stream)",
                        self.label, self.resized_frames, self.stream.width if self.stream else 0,
                        self.stream.height if self.stream else 0)

    # -- internals ----------------------------------------------------------------------------
    def _even(self, width: int, height: int) -> tuple[int, int]:
        """4:2:0 needs even sizes: pad by one line rather than lose the last row or column."""
        if self.pix_fmt.startswith(("yuv420", "nv12")):
            return width + width % 2, height + height % 2
        return width, height

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """Match the encoder's size: repeat the last row/column of an odd-sized frame (4:2:0
        needs even sizes), or scale a frame whose size changed mid-stream (an encoder cannot
        change size), counting those."""
        assert self.stream is not None
        width, height = self.stream.width, self.stream.height
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
        rate = self.frame_rate or Fraction(25)
        return max(1, round(1 / (rate * self._input_time_base)))

    def _in_encoder_ticks(self, pts: int) -> int:
        if self._time_base == self._input_time_base:
            return pts
        return round(pts * self._input_time_base / self._time_base)

    def _written_pts(self, pts: int) -> int:
        """An input pts in the encoder's time base (the same number where that is the
        input's, else the nearest tick) from the origin, a tick after the last at least (two
        frames never share one)."""
        written = self._in_encoder_ticks(pts) - self._origin
        if self._last_written is not None:
            written = max(written, self._last_written + 1)
        self._last_written = written
        return written


def parse_bitrate(text: str) -> int:
    """Bits per second from ``8M``, ``2500k`` or ``800000``; ConfigError naming the key."""
    units = {"k": 1_000, "m": 1_000_000}
    suffix = text[-1:].lower()
    try:
        value = int(float(text[:-1]) * units[suffix]) if suffix in units else int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"bitrate must look like 8M, 2500k or 800000, got {text!r}")
    return value
