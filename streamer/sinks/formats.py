"""Which encoder and pixel format an output gets, and checks of encoder options by FFmpeg.

``auto`` keeps what the input has: its chroma subsampling (4:4:4 stays 4:4:4) and its bit depth
(10-bit stays 10-bit), in the nearest format the encoder takes. An HDR input (PQ/HLG) is written
at 10 bits or more: an 8-bit output of it is refused, whether chosen or forced (see
streamer/media/hdr.py for the policy and the tone map that is the way to SDR).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from streamer.errors import ConfigError
from streamer.frames import HDR_TRANSFERS
from streamer.media.convert import pixel_shape

__all__ = ["AUTO", "check_encoder_options", "choose_codec", "choose_pix_fmt", "encoder_time_base",
           "frame_timed", "with_params"]

AUTO = "auto"
_HDR_BITS = 10
_FRAME_TIMED_MUXERS = {"avi"}  # a chunk per frame period: the time base is the frame rate
_MPEG4_MAX_DENOMINATOR = 65535  # MPEG-4 Part 2's vop_time_increment_resolution is 16 bits
_RATE_ONLY_CODECS = {"mpeg1video", "mpeg2video"}  # frame_rate_code: the standard rates only
# auto into a broadcast container: its own codec, as the ffmpeg tool writes it (a raw DV
# stream holds nothing else; x264's B-frames in MXF read back out of order)
_OWN_CODECS = {".dv": "dvvideo", ".mxf": "mpeg2video"}


def choose_codec(codec: str, target: str, hdr: bool, muxer: str | None = None) -> str:
    """``auto``: VP9 into WebM (the only family it holds), MPEG-4 Part 2 into AVI (H.264 in
    AVI, which stores no presentation time, reads back a frame late in FFmpeg's demuxer, even
    without B-frames; AVI's own family reads back exact), HEVC for HDR (x265 writes the
    mastering metadata and HDR10 players expect HEVC), else H.264. The container is
    ``muxer`` where given (``-f``), else ``target``'s extension."""
    if codec != AUTO:
        return codec
    suffix = Path(target.split("?", 1)[0]).suffix.lower()
    if muxer == "webm" or (muxer is None and suffix == ".webm"):
        return "libvpx-vp9"
    if (muxer == "avi" or (muxer is None and suffix == ".avi")) and not hdr:
        return "mpeg4"
    if suffix in _OWN_CODECS and not hdr:
        return _OWN_CODECS[suffix]
    return "libx265" if hdr else "libx264"


def frame_timed(muxer: str) -> bool:
    """The container stores a chunk per frame period from its first frame (AVI): no start
    time, so a video written there starts at 0, as the ffmpeg tool's does."""
    return muxer in _FRAME_TIMED_MUXERS


def encoder_time_base(codec: str, muxer: str, time_base: Fraction, rate: Fraction | None
                      ) -> Fraction:
    """The input's time base (every pts kept exactly, variable rates too), or the frame
    period, as the ffmpeg tool gives every encoder, where the input's cannot be written: AVI
    stores one chunk per frame period (90 kHz MPEG-TS ticks had made 24 empty chunks between
    frames), MPEG-4 Part 2 takes no denominator above 65535 and MPEG-1/2 only a frame rate."""
    too_fine = codec == "mpeg4" and time_base.denominator > _MPEG4_MAX_DENOMINATOR
    if frame_timed(muxer) or codec in _RATE_ONLY_CODECS or too_fine:
        return 1 / (rate or Fraction(25))  # ffmpeg's guess for a rate nobody states
    return time_base


def _yuv_formats(codec: str) -> list[str]:
    formats = av.codec.Codec(codec, "w").video_formats or ()
    return [f.name for f in formats if f.name.startswith("yuv")
            and not f.name.startswith(("yuvj", "yuva"))]


def choose_pix_fmt(pix_fmt: str, codec: str, input_format: str, transfer: int) -> str:
    """The output pixel format: the one asked for (checked against the encoder and an HDR
    input), or for ``auto`` the encoder's planar YUV format with the input's chroma and the
    fewest bits not below the input's."""
    hdr = HDR_TRANSFERS.get(transfer)
    offered = _yuv_formats(codec)
    if pix_fmt != AUTO:
        taken = av.codec.Codec(codec, "w").video_formats
        if taken and pix_fmt not in {f.name for f in taken}:
            raise ConfigError(f"encoder {codec} does not take pix_fmt {pix_fmt}; it takes "
                              f"{', '.join(offered) or ', '.join(f.name for f in taken)}")
        if hdr and pixel_shape(pix_fmt).bits < _HDR_BITS:
            raise ConfigError(f"the input is HDR ({hdr}); an 8-bit {pix_fmt} output would "
                              "show wrong on every screen: use a 10-bit pix_fmt (e.g. "
                              "yuv420p10le), or --tone-map to write SDR")
        return pix_fmt
    width_div, height_div, bits = pixel_shape(input_format)
    bits = max(bits, _HDR_BITS if hdr else 8)
    for chroma in ((width_div, height_div), (2, 2)):  # the input's chroma, else 4:2:0
        fitting = [f for f in offered
                   if pixel_shape(f)[:2] == chroma and pixel_shape(f).bits >= bits]
        if fitting:
            return min(fitting, key=lambda f: pixel_shape(f).bits)
    if hdr:
        raise ConfigError(f"the input is HDR ({hdr}) and encoder {codec} of this FFmpeg has "
                          "no 10-bit format: use libx265, or --tone-map to write SDR")
    same = [f for f in offered if pixel_shape(f)[:2] == (width_div, height_div)] or offered
    if not same:
        raise ConfigError(f"encoder {codec} takes no planar YUV format; give --pix-fmt")
    return max(same, key=lambda f: pixel_shape(f).bits)  # fewer bits than the input: the most


def with_params(codec: str, options: dict[str, str], params: str = "") -> dict[str, str]:
    """``options`` with ``params`` (x264/x265 syntax: ``key=value:key=value``, e.g. HDR
    metadata) appended to the encoder's own parameter option, and x265's console banner
    silenced (libx264 logs through FFmpeg; x265 prints on its own)."""
    key = {"libx264": "x264-params", "libx265": "x265-params"}.get(codec)
    if key is None:
        return dict(options)
    extra = [p for p in (params, "log-level=error" if codec == "libx265" else "") if p]
    merged = ":".join([options[key], *extra] if options.get(key) else extra)
    return {**options, key: merged} if merged else dict(options)


def check_encoder_options(codec: str, pix_fmt: str, options: dict[str, str]) -> None:
    """Open ``codec`` once on a tiny picture with ``options``: FFmpeg refuses bad values, and
    an option it leaves unused does not apply to this encoder; either is one ConfigError."""
    if not options:
        return
    context = av.CodecContext.create(codec, "w")
    assert isinstance(context, av.VideoCodecContext)
    context.width = context.height = 64
    context.pix_fmt = pix_fmt
    context.time_base = Fraction(1, 25)
    context.options = with_params(codec, options)
    try:
        context.open()
    except (av.error.FFmpegError, ValueError) as error:
        given = " ".join(f"{k}={v}" for k, v in options.items())
        raise ConfigError(f"encoder {codec} refused the options {given}: "
                          f"{getattr(error, 'strerror', None) or error}") from None
    unused = sorted(context.options)
    if unused:
        raise ConfigError(f"encoder {codec} has no option {', '.join(map(repr, unused))} "
                          "(see `ffmpeg -h encoder=" + codec + "`)")
