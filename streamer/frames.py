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
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import av
    import av.stream
    from av.container.core import Chapter

__all__ = [
    "ANY", "HDR_TRANSFERS", "HLG", "PQ", "RGB", "SDR_TAGS", "Attachment", "ColorTags", "Frame",
    "HdrMetadata", "Layout", "Passthrough", "StreamInfo", "YuvCoding", "full_scale",
    "is_interlaced", "negotiate", "preferred",
]

# FFmpeg's AVColorSpace, AVColorRange, AVColorPrimaries and AVColorTransferCharacteristic codes
# that hdm-stream names; any other code passes through unchanged.
MATRIX_BT709, MATRIX_BT601 = 1, 6
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
PRIMARIES_BT709, PRIMARIES_BT601 = 1, 6
TRANSFER_BT709, TRANSFER_BT601 = 1, 6
PQ, HLG = 16, 18  # the HDR transfers (SMPTE ST 2084 and ARIB STD-B67)
HDR_TRANSFERS = {PQ: "PQ", HLG: "HLG"}
DEFAULT_PEAK_NITS = 1000.0  # an HDR10 file that states no peak: the usual mastering peak



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
    """How the picture's YUV relates to RGB, with FFmpeg's numeric codes (read from a decoded
    frame and written onto an encoder's by streamer/media/convert.py).

    Attributes:
        matrix: YUV<->RGB matrix (1 = BT.709, 5/6 = BT.601, 9 = BT.2020).
        range: 1 = limited (16-235), 2 = full (0-255).
        primaries, transfer: carried to the output unchanged.
    """

    matrix: int = MATRIX_BT709
    range: int = RANGE_LIMITED
    primaries: int = PRIMARIES_BT709
    transfer: int = TRANSFER_BT709

    @property
    def coding(self) -> YuvCoding:
        return YuvCoding(self.matrix, self.range)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, codes: dict[str, int]) -> ColorTags:
        """The tags of :meth:`as_dict` (a ZeroMQ header's ``color``); a code not given keeps
        its default, one not known here is ignored."""
        return cls(**{f.name: codes[f.name] for f in dataclasses.fields(cls) if f.name in codes})


@dataclass(frozen=True)
class HdrMetadata:
    """Mastering display colour volume (SMPTE ST 2086) and content light level of a stream
    (read from a decoded frame's side data by streamer/media/hdr.py).

    Attributes:
        primaries: (x, y) chromaticities of the display's red, green and blue.
        white_point: (x, y) of its white.
        luminance: (min, max) of the display in cd/m².
        max_cll, max_fall: brightest pixel and brightest frame average in cd/m² (0: unknown).
    """

    primaries: tuple[tuple[float, float], ...] | None = None
    white_point: tuple[float, float] | None = None
    luminance: tuple[float, float] | None = None
    max_cll: int = 0
    max_fall: int = 0

    @property
    def peak_nits(self) -> float:
        """The brightest the content gets: MaxCLL, else the mastering display's peak."""
        if self.max_cll:
            return float(self.max_cll)
        if self.luminance is not None and self.luminance[1] > 0:
            return self.luminance[1]
        return DEFAULT_PEAK_NITS

    def encoder_params(self) -> str:
        """The ``master-display``/``max-cll`` text x264 and x265 take (chromaticity in units
        of 0.00002, luminance of 0.0001 cd/m²; green first, as the HEVC SEI orders them)."""
        parts = []
        if self.primaries is not None and self.white_point is not None:
            (rx, ry), (gx, gy), (bx, by) = self.primaries
            wx, wy = self.white_point
            low, high = self.luminance or (0.0, 0.0)

            def xy(x: float, y: float) -> str:
                return f"({round(x * 50000)},{round(y * 50000)})"

            parts.append(f"master-display=G{xy(gx, gy)}B{xy(bx, by)}R{xy(rx, ry)}"
                         f"WP{xy(wx, wy)}L({round(high * 10000)},{round(low * 10000)})")
        if self.max_cll or self.max_fall:
            parts.append(f"max-cll={self.max_cll},{self.max_fall}")
        return ":".join(parts)


@dataclass(frozen=True)
class Frame:
    """One decoded picture and what must survive to the output.

    Attributes:
        image: the pixels, laid out as ``layout`` says.
        layout: RGB24 / RGB48 full-range RGB, or I420 planes in the colours ``tags`` describe
            (kept as decoded so the inference device converts them; see
            streamer/engine/colour.py).
        pts, time_base: the demuxer's timestamp of the picture (pts may be None on raw streams).
        seq: position in the source's output, from 0, counting dropped frames too.
        capture_time: ``time.monotonic()`` when the picture was decoded.
        tags: colour tags the picture was decoded with and will be encoded with.
        stream_id: the source's name (ZeroMQ topic, summary label).
        rotation: degrees a player turns the picture (the display matrix, as a phone records
            portrait video): the pixels are kept as stored and the output gets the same
            matrix, so it plays upright as the input does.
        hdr: the mastering display and content light metadata the frame came with (HDR10).
        task: the task that enhanced it (``none``: left as it was by ``--task auto``); None
            before the engine.
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
    task: str | None = None

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
            video stream's (language, handler name, the start ``timecode``), for outputs to
            keep.
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

    @property
    def timecode(self) -> str | None:
        """The input's start timecode (HH:MM:SS:FF, ``;`` before the frames when drop-frame),
        from its tmcd track, its Matroska tag or its MXF header."""
        return self.video_metadata.get("timecode")


FIELD_PROGRESSIVE, FIELD_TT, FIELD_BT = 1, 2, 5  # FFmpeg's AVFieldOrder (0: unknown)


def is_interlaced(field_order: int) -> bool:
    """AVFieldOrder 2-5: TT, BB, TB, BT (which field is coded and which shown first)."""
    return field_order > FIELD_PROGRESSIVE


SDR_TAGS = ColorTags()  # BT.709 limited range: what a tone-mapped picture is written as
