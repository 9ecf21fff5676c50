"""Photos as files: PNG, JPEG, TIFF, WebP and BMP read into upright RGB pixels with their
metadata, and written back, through OpenCV (FFmpeg's image codecs keep no EXIF).

A photo is turned upright by its EXIF orientation as read (cameras store a portrait shot
sideways and say so), so the model sees what the photographer saw (rain falls down), and is
written upright with orientation 1: a viewer that honours the tag shows it as before, and one
that does not shows it right too. Depth follows the input (8 or 16 bits) where the format has
it; EXIF, XMP, ICC profiles and PNG's cICP go where the format holds them, and what a format
cannot hold is named so the caller can say it was left out. Alpha is kept aside, untouched.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streamer.errors import SinkError, SourceError

__all__ = ["PHOTO_EXTENSIONS", "Photo", "exif_orientation", "is_photo", "read_metadata",
           "read_photo", "upright", "write_photo"]

PHOTO_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})
EXIF, XMP, ICC, CICP = (cv2.IMAGE_METADATA_EXIF, cv2.IMAGE_METADATA_XMP,
                        cv2.IMAGE_METADATA_ICCP, cv2.IMAGE_METADATA_CICP)
METADATA_NAMES = {EXIF: "EXIF", XMP: "XMP", ICC: "ICC profile", CICP: "cICP"}
# What OpenCV (4.13, 5.1) writes into each format (it skips the rest with a log line of its own).
_HOLDS = {".png": {EXIF, XMP, ICC, CICP}, ".jpg": {EXIF, ICC}, ".jpeg": {EXIF, ICC},
          ".webp": {EXIF, XMP, ICC}, ".tif": set(), ".tiff": set(), ".bmp": set()}
_SIXTEEN_BITS = {".png", ".tif", ".tiff"}
_ALPHA = {".png", ".tif", ".tiff", ".webp"}
_QUALITY = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
            ".webp": [cv2.IMWRITE_WEBP_QUALITY, 95]}
_ORIENTATION_TAG, _SHORT = 0x0112, 3


def is_photo(path: str | Path) -> bool:
    """A still picture's name (by its extension)."""
    return Path(path).suffix.lower() in PHOTO_EXTENSIONS


@dataclass(frozen=True)
class Photo:
    """An upright picture: ``image`` H×W×3 RGB (uint8 or uint16), ``alpha`` H×W of the same
    type or None, ``metadata`` by OpenCV's IMAGE_METADATA_* kind (EXIF with its orientation
    set to 1), ``orientation`` the EXIF orientation it was turned by (1: none)."""

    image: np.ndarray
    alpha: np.ndarray | None = None
    metadata: dict[int, bytes] = field(default_factory=dict)
    orientation: int = 1

    @property
    def bits(self) -> int:
        return 16 if self.image.dtype == np.uint16 else 8


def read_photo(path: Path) -> Photo:
    """``path`` upright, as RGB with its alpha and metadata; SourceError saying why not."""
    if not path.is_file():
        raise SourceError(f"input file not found: {path}")
    pixels, kinds, blobs = cv2.imreadWithMetadata(str(path), flags=cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise SourceError(f"{path} cannot be read as a picture (PNG, JPEG, TIFF, WebP, BMP)")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise SourceError(f"{path} has {pixels.dtype} samples; 8 or 16 bits are taken")
    metadata = _metadata(kinds, blobs)
    orientation = 1
    if EXIF in metadata:
        orientation, metadata[EXIF] = exif_orientation(metadata[EXIF])
    pixels = upright(pixels, orientation)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    channels = pixels.shape[2]
    if channels == 1:
        image = np.repeat(pixels, 3, axis=2)
    elif channels in (3, 4):
        image = np.ascontiguousarray(pixels[:, :, 2::-1])  # BGR(A) -> RGB
    else:
        raise SourceError(f"{path} has {channels} channels; grey, RGB or RGBA are taken")
    alpha = np.ascontiguousarray(pixels[:, :, 3]) if channels == 4 else None
    return Photo(image, alpha, metadata, orientation)


def read_metadata(path: Path) -> dict[int, bytes]:
    """The metadata of the picture at ``path`` as it is stored (EXIF with its orientation as
    it was), by OpenCV's IMAGE_METADATA_* kind; {} where it has none or cannot be read. For
    the frames of an image sequence, whose pixels FFmpeg decodes: this decodes at an eighth
    of the size (a JPEG's DCT scaling), not the picture a second time."""
    _, kinds, blobs = cv2.imreadWithMetadata(str(path), flags=cv2.IMREAD_REDUCED_GRAYSCALE_8)
    return _metadata(kinds, blobs)


def _metadata(kinds: Sequence[int], blobs: Sequence[np.ndarray]) -> dict[int, bytes]:
    return {int(kind): bytes(np.asarray(blob).tobytes()) for kind, blob in
            zip(kinds, blobs, strict=True) if int(kind) in METADATA_NAMES}


def write_photo(path: Path, image: np.ndarray, alpha: np.ndarray | None = None,
                metadata: dict[int, bytes] | None = None) -> list[str]:
    """Write RGB ``image`` (uint8/uint16) as ``path``'s format says, 16 bits kept where it
    has them (else rounded to 8), ``alpha`` where it has one, and the ``metadata`` it holds;
    returns the names of what it could not hold (alpha, 16 bits, EXIF, ...). SinkError if it
    cannot be written."""
    suffix = path.suffix.lower()
    if suffix not in PHOTO_EXTENSIONS:
        raise SinkError(f"{path}: not a photo format ({', '.join(sorted(PHOTO_EXTENSIONS))})")
    left_out = []
    pixels = image[:, :, ::-1]  # RGB -> BGR
    if alpha is not None and suffix in _ALPHA:
        pixels = np.concatenate([pixels, alpha[:, :, None]], axis=2)
    elif alpha is not None:
        left_out.append("alpha")
    if pixels.dtype == np.uint16 and suffix not in _SIXTEEN_BITS:
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
        left_out.append("16 bits (8 written)")
    kept = {kind: blob for kind, blob in (metadata or {}).items() if kind in _HOLDS[suffix]}
    left_out += [METADATA_NAMES[kind] for kind in sorted(set(metadata or {}) - set(kept))]
    blobs = [np.frombuffer(blob, np.uint8) for blob in kept.values()]
    try:
        done, encoded = cv2.imencodeWithMetadata(suffix, np.ascontiguousarray(pixels),
                                                 list(kept), blobs, _QUALITY.get(suffix, []))
    except cv2.error as error:
        raise SinkError(f"cannot encode {path}: {error.msg.strip()}") from error
    if not done:
        raise SinkError(f"cannot encode {path}")
    try:
        path.write_bytes(encoded.tobytes())
    except OSError as error:
        raise SinkError(f"cannot write {path}: {error.strerror or error}") from error
    return left_out


def exif_orientation(exif: bytes) -> tuple[int, bytes]:
    """The orientation an EXIF block (a TIFF structure, with or without its ``Exif``
    header) states, 1 when none, and the block with it set to 1."""
    start = 6 if exif.startswith(b"Exif\x00\x00") else 0
    tiff = exif[start:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1, exif
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1, exif
    (entries,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    for entry in range(ifd + 2, min(ifd + 2 + 12 * entries, len(tiff) - 11), 12):
        tag, kind = struct.unpack(order + "HH", tiff[entry:entry + 4])
        if tag == _ORIENTATION_TAG and kind == _SHORT:
            (value,) = struct.unpack(order + "H", tiff[entry + 8:entry + 10])
            at = start + entry + 8
            return (value if 1 <= value <= 8 else 1,
                    exif[:at] + struct.pack(order + "H", 1) + exif[at + 2:])
    return 1, exif


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels turned as EXIF ``orientation`` (1-8) says a viewer shows them: 2 mirror,
    3 half turn, 4 flip, 5 transpose, 6 quarter turn clockwise, 7 transverse, 8 counter."""
    turned = {
        2: lambda p: p[:, ::-1], 3: lambda p: p[::-1, ::-1], 4: lambda p: p[::-1],
        5: lambda p: p.swapaxes(0, 1), 6: lambda p: np.rot90(p, -1),
        7: lambda p: p.swapaxes(0, 1)[::-1, ::-1], 8: lambda p: np.rot90(p, 1),
    }.get(orientation)
    return np.ascontiguousarray(turned(pixels)) if turned else pixels
