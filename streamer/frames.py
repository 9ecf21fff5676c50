"""Frames as they travel through the pipeline, and their colour handling.

A :class:`Frame` carries the picture as full-range RGB plus everything the output must keep:
pts and time base from the demuxer (no stage invents timestamps), the colour tags the picture
was decoded with (so it is encoded back with the same ones), a sequence number and the capture
time for latency accounting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

__all__ = [
    "ColorTags", "Frame", "from_video_frame", "rgb_image", "swscale_matrix", "to_video_frame",
]

# FFmpeg's AVColorSpace / AVColorRange / AVColorPrimaries / AVColorTransferCharacteristic codes.
MATRIX_BT709, MATRIX_UNSPECIFIED, MATRIX_BT601 = 1, 2, 6
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
PRIMARIES_BT709, PRIMARIES_BT601 = 1, 6
TRANSFER_BT709, TRANSFER_BT601 = 1, 6
_HIGH_BIT_DEPTH = 8
_I420_FORMATS = ("yuv420p", "yuvj420p")
# swscale names matrices by its own SWS_CS_* codes, which differ from AVColorSpace: BT.601 is
# 5 whether tagged BT470BG (5) or SMPTE170M (6), and BT.2020 is 9 for both of its variants.
_SWSCALE_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def swscale_matrix(matrix: int) -> int:
    """swscale's code for an FFmpeg colour matrix (unknown ones: BT.709)."""
    return _SWSCALE_MATRIX.get(matrix, 1)


@dataclass(frozen=True)
class ColorTags:
    """How the picture's YUV relates to RGB, with FFmpeg's numeric codes.

    Attributes:
        matrix: YUV<->RGB matrix (1 = BT.709, 5/6 = BT.601, 9 = BT.2020).
        range: 1 = limited (16-235), 2 = full (0-255).
        primaries, transfer: carried to the output unchanged.
    """

    matrix: int = MATRIX_BT709
    range: int = RANGE_LIMITED
    primaries: int = PRIMARIES_BT709
    transfer: int = TRANSFER_BT709

    @classmethod
    def of(cls, frame: av.VideoFrame) -> ColorTags:
        """The frame's own tags; unspecified ones resolved as players do (BT.709 from 720 lines
        up, BT.601 below; limited range unless the format is a full-range one)."""
        hd = frame.height >= 720
        matrix = int(frame.colorspace)
        if matrix == MATRIX_UNSPECIFIED or matrix == 0:
            matrix = MATRIX_BT709 if hd else MATRIX_BT601
        color_range = int(frame.color_range)
        if color_range == RANGE_UNSPECIFIED:
            full = frame.format.name.startswith(("yuvj", "rgb", "bgr", "gbr", "gray"))
            color_range = RANGE_FULL if full else RANGE_LIMITED
        primaries = int(frame.color_primaries)
        if primaries == MATRIX_UNSPECIFIED or primaries == 0:
            primaries = PRIMARIES_BT709 if hd else PRIMARIES_BT601
        transfer = int(frame.color_trc)
        if transfer == MATRIX_UNSPECIFIED or transfer == 0:
            transfer = TRANSFER_BT709 if hd else TRANSFER_BT601
        return cls(matrix, color_range, primaries, transfer)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Frame:
    """One decoded picture and what must survive to the output.

    Attributes:
        image: H×W×3 full-range RGB, uint8 (or uint16 for sources above 8 bits); or, for frames
            kept as decoded so the GPU converts them, the I420 planes: a (3H/2)×W uint8 array in
            the colours ``tags`` describe (see streamer/colour.py).
        pts, time_base: the demuxer's timestamp of the picture (pts may be None on raw streams).
        seq: position in the source's output, from 0, counting dropped frames too.
        capture_time: ``time.monotonic()`` when the picture was decoded.
        tags: colour tags the picture was decoded with and will be encoded with.
        stream_id: the source's name (ZeroMQ topic, summary label).
    """

    image: np.ndarray
    pts: int | None
    time_base: Fraction | None
    seq: int
    capture_time: float
    tags: ColorTags
    stream_id: str = "stream0"

    @property
    def planar(self) -> bool:
        """True when ``image`` holds I420 planes rather than RGB."""
        return self.image.ndim == 2

    @property
    def height(self) -> int:
        rows = int(self.image.shape[0])
        return rows * 2 // 3 if self.planar else rows

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def with_image(self, image: np.ndarray) -> Frame:
        return dataclasses.replace(self, image=image)


def _bit_depth(frame: av.VideoFrame) -> int:
    return max(component.bits for component in frame.format.components)


def _keeps_planes(frame: av.VideoFrame) -> bool:
    """Whether the frame can travel as I420 planes: 8-bit 4:2:0 with even sides."""
    return (frame.format.name in _I420_FORMATS and frame.width % 2 == 0
            and frame.height % 2 == 0)


def from_video_frame(
    frame: av.VideoFrame, *, seq: int, capture_time: float, stream_id: str, planar: bool = False
) -> Frame:
    """Convert a decoded frame to full-range RGB with the matrix and range it is tagged with;
    with ``planar``, 8-bit 4:2:0 frames keep their I420 planes instead (converted later on the
    inference device)."""
    tags = ColorTags.of(frame)
    time_base = Fraction(frame.time_base) if frame.time_base is not None else None
    if planar and _keeps_planes(frame):
        planes = frame.to_ndarray()  # no reformat: yuvj420p must keep its full-range codes
        return Frame(planes, frame.pts, time_base, seq, capture_time, tags, stream_id)
    return Frame(_to_rgb(frame, tags), frame.pts, time_base, seq, capture_time, tags, stream_id)


def _to_rgb(frame: av.VideoFrame, tags: ColorTags) -> np.ndarray:
    rgb_format = "rgb48le" if _bit_depth(frame) > _HIGH_BIT_DEPTH else "rgb24"
    return frame.reformat(
        format=rgb_format,
        src_colorspace=swscale_matrix(tags.matrix),
        src_color_range=tags.range,
        dst_color_range=RANGE_FULL,
    ).to_ndarray()


def rgb_image(frame: Frame) -> np.ndarray:
    """The frame's picture as full-range RGB, converting I420 planes on the CPU if need be."""
    if not frame.planar:
        return frame.image
    return _to_rgb(av.VideoFrame.from_ndarray(frame.image, format="yuv420p"), frame.tags)


def to_video_frame(image: np.ndarray, tags: ColorTags, pix_fmt: str) -> av.VideoFrame:
    """Full-range RGB (uint8 or uint16), or I420 planes already in ``tags``' colours, to an
    encoder frame in ``pix_fmt``, tagged with ``tags``."""
    if image.ndim == 2:
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="yuv420p")
        if pix_fmt != "yuv420p":
            out = out.reformat(format=pix_fmt)
    else:
        source = "rgb48le" if image.dtype == np.uint16 else "rgb24"
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=source)
        out = rgb.reformat(
            format=pix_fmt,
            dst_colorspace=swscale_matrix(tags.matrix),
            src_color_range=RANGE_FULL,
            dst_color_range=tags.range,
        )
    out.colorspace = tags.matrix
    out.color_range = tags.range
    out.color_primaries = tags.primaries
    out.color_trc = tags.transfer
    return out
