"""What flows through the pipeline: frames that say their layout, and a stream's description.

A :class:`Frame` carries the picture plus everything the output must keep: pts and time base
from the demuxer (no stage invents timestamps), the colour tags the picture was decoded with (so
it is encoded back with the same ones), a sequence number and the capture time for latency
accounting. Its :class:`Layout` says how the pixels are laid out; nothing infers it from shapes.
:class:`StreamInfo` is what :meth:`Source.open` learns about a stream, for the sinks to open with.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple

import av
import av.stream
import numpy as np

from streamer.hdr import HDR_TRANSFERS, HdrMetadata, tone_map

if TYPE_CHECKING:
    from av.container.core import Chapter

__all__ = [
    "ANY", "RGB", "SDR_TAGS", "Attachment", "ColorTags", "Frame", "Layout", "Passthrough",
    "PixelShape", "StreamInfo", "YuvCoding", "content_tags", "eight_bit", "from_video_frame",
    "full_scale", "is_interlaced", "negotiate", "offered_layouts", "pixel_shape", "preferred",
    "rgb_image", "swscale_matrix", "to_video_frame",
]

# FFmpeg's AVColorSpace, AVColorRange, AVColorPrimaries and AVColorTransferCharacteristic codes
# that hdm-stream names; any other code passes through unchanged.
_UNSPECIFIED = (0, 2)  # "reserved" and "unspecified": the same code (2) in all three tables
MATRIX_BT709, MATRIX_BT601 = 1, 6
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
PRIMARIES_BT709, PRIMARIES_BT601 = 1, 6
TRANSFER_BT709, TRANSFER_BT601 = 1, 6
_I420_FORMATS = ("yuv420p", "yuvj420p")
# swscale names matrices by its own SWS_CS_* codes, which differ from AVColorSpace: BT.601 is
# 5 whether tagged BT470BG (5) or SMPTE170M (6), and BT.2020 is 9 for both of its variants.
_SWSCALE_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


class Layout(enum.Enum):
    """How a frame's pixels are laid out in its numpy array."""

    RGB24 = "rgb24"  # H×W×3 uint8, full-range RGB
    RGB48 = "rgb48"  # H×W×3 uint16, full-range RGB (sources above 8 bits)
    I420 = "i420"  # (3H/2)×W uint8: Y, then U, then V planes, in the frame's tagged colours

    @property
    def is_rgb(self) -> bool:
        return self is not Layout.I420

    def size(self, image: np.ndarray) -> tuple[int, int]:
        """(height, width) of the picture ``image`` holds in this layout."""
        rows, width = int(image.shape[0]), int(image.shape[1])
        return (rows * 2 // 3 if self is Layout.I420 else rows), width

    @staticmethod
    def rgb_for(dtype: np.dtype) -> Layout:
        return Layout.RGB48 if dtype == np.uint16 else Layout.RGB24


def full_scale(layout: Layout) -> float:
    """The code value of full white in a layout (16-bit RGB: 65535; 8-bit RGB and I420: 255)."""
    return 65535.0 if layout is Layout.RGB48 else 255.0


RGB = frozenset({Layout.RGB24, Layout.RGB48})
ANY = frozenset(Layout)
_PREFERENCE = (Layout.I420, Layout.RGB48, Layout.RGB24)  # fewest bytes first, then most bits


def negotiate(offered: frozenset[Layout], *accepted: frozenset[Layout]) -> frozenset[Layout]:
    """The layouts every party takes: what a source offers intersected with what each consumer
    accepts. RGB always survives (every stage can convert to it), so the result is never empty;
    I420 survives only if everyone takes it."""
    common = set(offered)
    for layouts in accepted:
        common &= layouts
    return frozenset(common) or frozenset(offered & RGB or RGB)


def preferred(layouts: frozenset[Layout]) -> Layout:
    return next(layout for layout in _PREFERENCE if layout in layouts)


class YuvCoding(NamedTuple):
    """The two codes that turn YUV into RGB: matrix (1 = BT.709, 5/6 = BT.601, 9 = BT.2020)
    and range (1 = limited, 2 = full). This is all of a frame's colour the engine sees."""

    matrix: int
    range: int


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
        return cls(matrix, color_range, primaries, transfer)

    @property
    def coding(self) -> YuvCoding:
        return YuvCoding(self.matrix, self.range)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def stamp(self, target: av.VideoFrame | av.VideoCodecContext) -> None:
        """Write the tags onto an encoder frame or an encoder's context."""
        target.colorspace = self.matrix
        target.color_range = self.range
        target.color_primaries = self.primaries
        target.color_trc = self.transfer


@dataclass(frozen=True)
class Frame:
    """One decoded picture and what must survive to the output.

    Attributes:
        image: the pixels, laid out as ``layout`` says.
        layout: RGB24 / RGB48 full-range RGB, or I420 planes in the colours ``tags`` describe
            (kept as decoded so the inference device converts them; see streamer/colour.py).
        pts, time_base: the demuxer's timestamp of the picture (pts may be None on raw streams).
        seq: position in the source's output, from 0, counting dropped frames too.
        capture_time: ``time.monotonic()`` when the picture was decoded.
        tags: colour tags the picture was decoded with and will be encoded with.
        stream_id: the source's name (ZeroMQ topic, summary label).
        rotation: degrees a player turns the picture (the display matrix, as a phone records
            portrait video): the pixels are kept as stored and the output gets the same
            matrix, so it plays upright as the input does.
        hdr: the mastering display and content light metadata the frame came with (HDR10).
    """

    image: np.ndarray
    layout: Layout
    pts: int | None
    time_base: Fraction | None
    seq: int
    capture_time: float
    tags: ColorTags
    stream_id: str = "stream0"
    rotation: int = 0
    hdr: HdrMetadata | None = None

    @property
    def height(self) -> int:
        return self.layout.size(self.image)[0]

    @property
    def width(self) -> int:
        return self.layout.size(self.image)[1]

    def with_image(self, image: np.ndarray, layout: Layout) -> Frame:
        return dataclasses.replace(self, image=image, layout=layout)


@dataclass(frozen=True)
class Passthrough:
    """An audio, subtitle or data packet to copy to the output untouched; ``stream_index`` is
    the input stream's (the packet's own stream may be closed by the time it is written)."""

    stream_index: int
    packet: av.Packet[av.stream.Stream]


class Attachment(NamedTuple):
    """A file a container carries beside its streams (a subtitle font, a cover)."""

    name: str
    mimetype: str
    data: bytes


@dataclass(frozen=True)
class StreamInfo:
    """What a source knows about its stream once open.

    Attributes:
        stream_id: the stream's name.
        name: a short label for progress bars and logs (the file name, the URL).
        width, height: the first frame's size as the demuxer reports it (0: not known yet).
        rate: average frame rate, when known.
        frames: frames the container announces (None: not said, or a live stream).
        live: a camera or network stream (drops rather than blocks; reconnects).
        layouts: the layouts this source can deliver (I420 for 8-bit 4:2:0 with even sides).
        passthrough: streams a file output copies packet by packet (audio, subtitles). They
            belong to the open input: a sink copies their parameters in ``open``.
        sample_aspect_ratio: the pixels' shape (720x480 shown at 16:9 has 32:27), when set.
        metadata, video_metadata: the container's tags (title, creation time, ...) and the
            video stream's (language, handler name), for outputs to keep.
        pixel_format: the decoder's pixel format, or the one frames are turned into (an HDR
            input tone-mapped to SDR: 8-bit); outputs keep its depth and chroma by default.
        transfer: the transfer characteristic frames come with (16 = PQ, 18 = HLG: HDR).
        field_order: FFmpeg's AVFieldOrder of the frames (1 progressive, 2-5 interlaced).
        chapters: the container's chapters as PyAV gives them (start, end, time_base, title).
        attachments: files the container carries (fonts of a Matroska file's subtitles).
    """

    stream_id: str
    name: str
    width: int
    height: int
    rate: Fraction | None
    frames: int | None
    live: bool
    layouts: frozenset[Layout]
    passthrough: tuple[av.stream.Stream, ...] = ()
    sample_aspect_ratio: Fraction | None = None
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    video_metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    pixel_format: str = "yuv420p"
    transfer: int = TRANSFER_BT709
    field_order: int = 0
    chapters: tuple[Chapter, ...] = ()
    attachments: tuple[Attachment, ...] = ()

    @property
    def hdr(self) -> bool:
        return self.transfer in HDR_TRANSFERS


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


FIELD_PROGRESSIVE, FIELD_TT, FIELD_BT = 1, 2, 5  # FFmpeg's AVFieldOrder (0: unknown)


def is_interlaced(field_order: int) -> bool:
    """AVFieldOrder 2-5: TT, BB, TB, BT (which field is coded and which shown first)."""
    return field_order > FIELD_PROGRESSIVE


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


SDR_TAGS = ColorTags()  # BT.709 limited range: what a tone-mapped picture is written as


def from_video_frame(
    frame: av.VideoFrame, *, layouts: frozenset[Layout], seq: int, capture_time: float,
    stream_id: str, to_sdr: bool = False,
) -> Frame:
    """A decoded frame in the preferred of ``layouts`` it can take: I420 planes as decoded
    (converted later on the inference device) or full-range RGB by the frame's own matrix and
    range (a frame that cannot be I420, after a size change say, comes as RGB). ``to_sdr``:
    an HDR frame is tone-mapped to 8-bit BT.709 RGB (see streamer/hdr.py)."""
    tags = ColorTags.of(frame)
    time_base = Fraction(frame.time_base) if frame.time_base is not None else None
    hdr = HdrMetadata.of(frame) if tags.transfer in HDR_TRANSFERS else None
    if to_sdr and tags.transfer in HDR_TRANSFERS:
        image = tone_map(_to_rgb(frame, tags, Layout.RGB48), tags.transfer,
                         (hdr or HdrMetadata()).peak_nits)
        return Frame(image, Layout.RGB24, frame.pts, time_base, seq, capture_time, SDR_TAGS,
                     stream_id, rotation=int(frame.rotation))
    possible = offered_layouts(frame.format.name, frame.width, frame.height)
    layout = preferred(negotiate(possible, layouts))
    if layout is Layout.I420:
        image = frame.to_ndarray()  # no reformat: yuvj420p must keep its full-range codes
    else:
        image = _to_rgb(frame, tags, layout)
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
    if frame.layout.is_rgb:
        return frame.image
    planes = av.VideoFrame.from_ndarray(frame.image, format="yuv420p")
    return _to_rgb(planes, frame.tags, Layout.RGB24)


def to_video_frame(image: np.ndarray, layout: Layout, tags: ColorTags, pix_fmt: str
                   ) -> av.VideoFrame:
    """RGB (8 or 16 bits) or I420 planes already in ``tags``' colours, to an encoder frame in
    ``pix_fmt``, tagged with ``tags``."""
    if layout is Layout.I420:
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="yuv420p")
        if pix_fmt != "yuv420p":
            out = out.reformat(format=pix_fmt)
    else:
        source = "rgb48le" if layout is Layout.RGB48 else "rgb24"
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=source)
        out = rgb.reformat(
            format=pix_fmt,
            dst_colorspace=swscale_matrix(tags.matrix),
            src_color_range=RANGE_FULL,
            dst_color_range=tags.range,
        )
    tags.stamp(out)
    return out
