"""PyAV frames to and from :class:`~streamer.frames.Frame`: the one place a decoded
``av.VideoFrame`` becomes numpy pixels with their tags, and pixels become an encoder's frame.

Also what a pixel format can hand on (:func:`pixel_shape`, :func:`offered_layouts`,
:func:`eight_bit`), swscale's matrix codes, and which container tags describe content.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import NamedTuple

import av
import numpy as np

from streamer.frames import (
    HDR_TRANSFERS,
    MATRIX_BT601,
    MATRIX_BT709,
    PRIMARIES_BT601,
    PRIMARIES_BT709,
    RANGE_FULL,
    RANGE_LIMITED,
    RANGE_UNSPECIFIED,
    SDR_TAGS,
    TRANSFER_BT601,
    TRANSFER_BT709,
    ColorTags,
    Frame,
    HdrMetadata,
    Layout,
    negotiate,
    preferred,
)
from streamer.media.hdr import hdr_metadata, tone_map

__all__ = [
    "PixelShape", "color_tags", "content_tags", "eight_bit", "from_video_frame", "i420_image",
    "i420_to_rgb", "offered_layouts", "pixel_shape", "rgb_image", "stamp", "swscale_matrix",
    "to_video_frame",
]

_UNSPECIFIED = (0, 2)  # "reserved" and "unspecified": the same code (2) in all three tables
_I420_FORMATS = ("yuv420p", "yuvj420p")
# swscale names matrices by its own SWS_CS_* codes, which differ from AVColorSpace: BT.601 is
# 5 whether tagged BT470BG (5) or SMPTE170M (6), and BT.2020 is 9 for both of its variants.
_SWSCALE_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def color_tags(frame: av.VideoFrame) -> ColorTags:
    """The frame's own tags; unspecified ones resolved as players do (BT.709 from 720 lines
    up, BT.601 below; limited range unless the format is a full-range one)."""
    hd = frame.height >= 720
    matrix = int(frame.colorspace)
    if matrix in _UNSPECIFIED:
        matrix = MATRIX_BT709 if hd else MATRIX_BT601
    color_range = int(frame.color_range)
    if color_range == RANGE_UNSPECIFIED:
        full = frame.format.name.startswith(("yuvj", "rgb", "bgr", "gbr", "gray"))
        color_range = RANGE_FULL if full else RANGE_LIMITED
    primaries = int(frame.color_primaries)
    if primaries in _UNSPECIFIED:
        primaries = PRIMARIES_BT709 if hd else PRIMARIES_BT601
    transfer = int(frame.color_trc)
    if transfer in _UNSPECIFIED:
        transfer = TRANSFER_BT709 if hd else TRANSFER_BT601
    return ColorTags(matrix, color_range, primaries, transfer)


def stamp(tags: ColorTags, target: av.VideoFrame | av.VideoCodecContext) -> None:
    """Write the tags onto an encoder frame or an encoder's context."""
    target.colorspace = tags.matrix
    target.color_range = tags.range
    target.color_primaries = tags.primaries
    target.color_trc = tags.transfer


# Tags the muxer writes itself, or that describe the input's encoding rather than its content.
_ENCODING_TAGS = {"encoder", "duration", "major_brand", "minor_version", "compatible_brands",
                  "vendor_id"}


def content_tags(metadata: dict[str, str]) -> dict[str, str]:
    """A container's or stream's tags that describe its content (title, language, creation
    time, handler name), for an output to keep."""
    return {k: v for k, v in metadata.items() if k.lower() not in _ENCODING_TAGS}


class PixelShape(NamedTuple):
    """A pixel format's chroma subsampling (divisors of the width and height) and bit depth."""

    width_div: int
    height_div: int
    bits: int


@functools.cache
def pixel_shape(format_name: str) -> PixelShape:
    """RGB counts as 4:4:4 and grey as 4:2:0 (it has no chroma to keep)."""
    fmt = av.VideoFormat(format_name, 64, 64)
    bits = max(component.bits for component in fmt.components)
    if len(fmt.components) < 3:
        return PixelShape(2, 2, bits)
    if fmt.is_rgb:
        return PixelShape(1, 1, bits)
    chroma = fmt.components[1]
    return PixelShape(64 // chroma.width, 64 // chroma.height, bits)


def bit_depth(format_name: str) -> int:
    return pixel_shape(format_name).bits


def eight_bit(format_name: str) -> str:
    """The 8-bit planar YUV format with the chroma of ``format_name`` (RGB: 4:4:4)."""
    shape = pixel_shape(format_name)
    if shape.bits <= 8:
        return format_name
    return {(2, 2): "yuv420p", (2, 1): "yuv422p"}.get((shape.width_div, shape.height_div),
                                                       "yuv444p")


def offered_layouts(format_name: str, width: int, height: int) -> frozenset[Layout]:
    """What a decoder of this pixel format can hand on: its RGB, and I420 planes as decoded
    for 8-bit 4:2:0 with even sides."""
    rgb = Layout.RGB48 if bit_depth(format_name) > 8 else Layout.RGB24
    planes = format_name in _I420_FORMATS and width % 2 == 0 and height % 2 == 0
    return frozenset({rgb, Layout.I420}) if planes else frozenset({rgb})


def swscale_matrix(matrix: int) -> int:
    """swscale's code for an FFmpeg colour matrix (unknown ones: BT.709)."""
    return _SWSCALE_MATRIX.get(matrix, 1)


def from_video_frame(
    frame: av.VideoFrame, *, layouts: frozenset[Layout], seq: int, capture_time: float,
    stream_id: str, to_sdr: bool = False,
) -> Frame:
    """A decoded frame in the preferred of ``layouts`` it can take: I420 planes as decoded
    (converted later on the inference device) or full-range RGB by the frame's own matrix and
    range (a frame that cannot be I420, after a size change say, comes as RGB). ``to_sdr``:
    an HDR frame is tone-mapped to 8-bit BT.709 RGB (see streamer/media/hdr.py)."""
    tags = color_tags(frame)
    time_base = Fraction(frame.time_base) if frame.time_base is not None else None
    hdr = hdr_metadata(frame) if tags.transfer in HDR_TRANSFERS else None
    if to_sdr and tags.transfer in HDR_TRANSFERS:
        image = tone_map(_to_rgb(frame, tags, Layout.RGB48), tags.transfer,
                         (hdr or HdrMetadata()).peak_nits)
        return Frame(image, Layout.RGB24, frame.pts, time_base, seq, capture_time, SDR_TAGS,
                     stream_id, rotation=int(frame.rotation))
    possible = offered_layouts(frame.format.name, frame.width, frame.height)
    layout = preferred(negotiate(possible, layouts))
    # I420: no reformat, so that yuvj420p keeps its full-range codes.
    image = frame.to_ndarray() if layout is Layout.I420 else _to_rgb(frame, tags, layout)
    return Frame(image, layout, frame.pts, time_base, seq, capture_time, tags, stream_id,
                 rotation=int(frame.rotation), hdr=hdr)


def _to_rgb(frame: av.VideoFrame, tags: ColorTags, layout: Layout) -> np.ndarray:
    return frame.reformat(
        format="rgb48le" if layout is Layout.RGB48 else "rgb24",
        src_colorspace=swscale_matrix(tags.matrix),
        src_color_range=tags.range,
        dst_color_range=RANGE_FULL,
    ).to_ndarray()


def rgb_image(frame: Frame) -> np.ndarray:
    """The frame's picture as full-range RGB, converting I420 planes on the CPU if need be."""
    return frame.image if frame.layout.is_rgb else i420_to_rgb(frame.image, frame.tags)


def i420_to_rgb(planes: np.ndarray, tags: ColorTags) -> np.ndarray:
    """Full-range 8-bit RGB from (3H/2)×W I420 planes in ``tags``' matrix and range."""
    return _to_rgb(av.VideoFrame.from_ndarray(planes, format="yuv420p"), tags, Layout.RGB24)


def i420_image(frame: Frame) -> np.ndarray:
    """The frame's picture as (3H/2)×W 8-bit I420 planes in its own colour tags: its planes
    as they are, or its RGB converted (16-bit RGB to 8 bits; an odd side padded by one
    repeated row or column, as an encoder's 4:2:0 frame is)."""
    if frame.layout is Layout.I420:
        return frame.image
    image = frame.image
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return to_video_frame(image, frame.layout, frame.tags, "yuv420p").to_ndarray()


def to_video_frame(image: np.ndarray, layout: Layout, tags: ColorTags, pix_fmt: str
                   ) -> av.VideoFrame:
    """RGB (8 or 16 bits) or I420 planes already in ``tags``' colours, to an encoder frame in
    ``pix_fmt``, tagged with ``tags``."""
    # from_numpy_buffer: the frame reads the array in place (from_ndarray copied it first);
    # the encoder copies the picture into its own buffers when it takes it.
    if layout is Layout.I420:
        out = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format="yuv420p")
        if pix_fmt != "yuv420p":
            out = out.reformat(format=pix_fmt)
    else:
        source = "rgb48le" if layout is Layout.RGB48 else "rgb24"
        rgb = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format=source)
        out = rgb.reformat(
            format=pix_fmt,
            dst_colorspace=swscale_matrix(tags.matrix),
            src_color_range=RANGE_FULL,
            dst_color_range=tags.range,
        )
    stamp(tags, out)
    return out
