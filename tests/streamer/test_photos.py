"""Photos in, photos out, as ffmpeg's users expect and cameras write them: ``run photo.jpg -o
out.jpg`` with no other flag, the EXIF orientation honoured (upright out, orientation 1), the
depth kept (16-bit PNG and TIFF), alpha and metadata kept where the format holds them, each
photo enhanced on its own, and a folder of photos and videos into a folder."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from streamer.media.photo import exif_orientation, upright
from tests.streamer.camera_clips import FFPROBE, ffmpeg, needs_ffmpeg
from tests.streamer.clips import decoded_pts, write_clip
from tests.streamer.commands import run

pytestmark = needs_ffmpeg
MAKE = b"TestCam\x00"


def camera_exif(orientation: int) -> bytes:
    """A camera's EXIF block (little-endian TIFF): its make and the orientation tag."""
    ifd = struct.pack("<HHII", 0x010F, 2, len(MAKE), 38)  # Make, ASCII, after the IFD
    ifd += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)  # Orientation, SHORT
    return b"II*\x00" + struct.pack("<IH", 8, 2) + ifd + struct.pack("<I", 0) + MAKE


def ffmpeg_picture(path: Path, *more: str, size: str = "160x120") -> np.ndarray:
    """A test picture as FFmpeg encodes it (``more``: its output options); its pixels."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}", "-frames:v", "1", *more, path)
    return pixels_of(path)


def pixels_of(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    pixels = cv2.imread(str(path), flags)
    assert pixels is not None, path
    return pixels


def with_metadata(path: Path, pixels: np.ndarray, metadata: dict[int, bytes]) -> None:
    assert cv2.imwriteWithMetadata(str(path), pixels, list(metadata),
                                   [np.frombuffer(b, np.uint8) for b in metadata.values()])


def read_metadata(path: Path) -> dict[int, bytes]:
    _, kinds, blobs = cv2.imreadWithMetadata(str(path), flags=cv2.IMREAD_UNCHANGED)
    return {int(k): np.asarray(b).tobytes() for k, b in zip(kinds, blobs, strict=True)}


def picture(path: Path) -> av.VideoFrame:
    """The picture as FFmpeg decodes it."""
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def probed_orientation(path: Path) -> str | None:
    assert FFPROBE is not None
    out = json.loads(subprocess.run(
        [FFPROBE, "-v", "error", "-show_frames", "-of", "json", str(path)],
        check=True, capture_output=True, text=True).stdout)
    tags: dict[str, str] = out["frames"][0].get("tags", {})
    orientation = tags.get("Orientation")
    return None if orientation is None else orientation.strip()


def test_a_jpeg_comes_out_a_jpeg_upright_with_its_exif(tmp_path: Path) -> None:
    """A portrait shot stored sideways (orientation 6): enhanced upright (the model sees what
    the camera saw), written upright with orientation 1 and the camera's EXIF kept."""
    src, dst = tmp_path / "portrait.jpg", tmp_path / "out.jpg"
    stored = ffmpeg_picture(tmp_path / "ffmpeg.jpg", "-q:v", "2")
    with_metadata(src, stored, {cv2.IMAGE_METADATA_EXIF: camera_exif(6)})
    assert probed_orientation(src) == "6"
    assert run(src, "-o", dst) == 0
    out = picture(dst)
    assert (out.width, out.height) == (120, 160)  # turned a quarter clockwise
    exif = read_metadata(dst)[cv2.IMAGE_METADATA_EXIF]
    assert MAKE.rstrip(b"\x00") in exif and exif_orientation(exif)[0] == 1
    assert probed_orientation(dst) in (None, "1")


def test_orientations_turn_as_a_viewer_shows_them() -> None:
    """OpenCV applies the tag when it reads a colour picture: the same turn for all eight."""
    stored = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        ok, encoded = cv2.imencodeWithMetadata(".png", stored, [cv2.IMAGE_METADATA_EXIF],
                                               [np.frombuffer(camera_exif(orientation),
                                                              np.uint8)])
        shown = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        assert ok and shown is not None
        assert np.array_equal(upright(stored, orientation), shown), orientation


@pytest.mark.parametrize(("name", "bits"), [("out.png", 16), ("out.tiff", 16), ("out.jpg", 8)])
def test_sixteen_bits_stay_sixteen_where_the_format_has_them(tmp_path: Path, name: str,
                                                             bits: int) -> None:
    src, dst = tmp_path / "deep.png", tmp_path / name
    # FFmpeg's test picture scaled to 16 bits, with its own low bits: testsrc2 alone is 8-bit
    # colour in 257 steps, which the classical dehazer leaves as it is wherever a pixel has a
    # black channel (transmission 1), so the output's steps would say nothing.
    picture_8bit = ffmpeg_picture(tmp_path / "source.png")
    low_bits = np.random.default_rng(0).integers(0, 200, picture_8bit.shape)
    assert cv2.imwrite(str(src), (picture_8bit.astype(np.uint16) * 257 + low_bits).clip(0, 65535)
                       .astype(np.uint16))
    stored = pixels_of(src)
    assert stored.dtype == np.uint16 and np.count_nonzero(stored % 257) > stored.size // 2
    assert run(src, "-o", dst, "--task", "dehaze") == 0  # enhanced (auto leaves it as it is)
    written = pixels_of(dst)
    assert written.shape == stored.shape
    assert written.dtype == (np.uint16 if bits == 16 else np.uint8)
    if bits == 16:  # not 8 bits scaled up: values between the 257 steps
        assert np.count_nonzero(written % 257) > written.size // 2
        assert picture(dst).format.name.startswith("rgb48")


def test_alpha_and_xmp_are_kept_where_the_format_holds_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "logo.png"
    rgb = ffmpeg_picture(tmp_path / "ffmpeg.png")
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1], dtype=np.uint8), (rgb.shape[0], 1))
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    with_metadata(src, np.dstack([rgb, alpha]), {cv2.IMAGE_METADATA_XMP: xmp})
    assert run(src, "-o", tmp_path / "out.webp") == 0
    webp = pixels_of(tmp_path / "out.webp")
    assert webp.shape[2] == 4
    assert np.abs(webp[:, :, 3].astype(int) - alpha).max() <= 2  # lossy WebP: near
    kept = read_metadata(tmp_path / "out.webp")[cv2.IMAGE_METADATA_XMP]
    assert kept.rstrip(b"\x00") == xmp  # (OpenCV ends it with a NUL)
    assert run(src, "-o", tmp_path / "out.bmp") == 0  # a BMP holds neither
    assert "a bmp file cannot hold the input's alpha, XMP: left out" in capsys.readouterr().err
    assert pixels_of(tmp_path / "out.bmp").shape[2] == 3


def test_a_folder_of_photos_and_videos_each_photo_on_its_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Photos in a batch share the engine, not a history: each comes out as it does alone
    (the mask smoother and the stabiliser would otherwise lean on the photo before)."""
    shoot, out = tmp_path / "shoot", tmp_path / "out"
    (shoot / "day2").mkdir(parents=True)
    ffmpeg_picture(shoot / "a.png")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120", "-frames:v", "1", "-vf", "negate",
           shoot / "day2" / "b.png")
    write_clip(shoot / "clip.mp4", frames=4, audio=False)
    assert run(shoot, "-o", f"{out}/") == 0
    assert "3 of 3 files enhanced, 0 failed" in capsys.readouterr().err
    assert len(decoded_pts(out / "clip.mp4")) == 4
    assert run(shoot / "day2" / "b.png", "-o", tmp_path / "alone.png") == 0
    assert np.array_equal(pixels_of(out / "day2" / "b.png"), pixels_of(tmp_path / "alone.png"))


def test_what_a_photo_cannot_take_is_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "a.jpg"
    ffmpeg_picture(src)
    assert run(src, "-o", tmp_path / "b.jpg", "--codec", "libx264", "--crf", "18") == 2
    err = capsys.readouterr().err
    assert "error: --codec, --crf: for video; a photo is written as its extension" in err
    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=3, audio=False)
    assert run(clip, "-o", tmp_path / "still.png") == 2  # a video into one picture
    assert "still.png holds one picture: name an image sequence" in capsys.readouterr().err
    assert run(clip, "-o", tmp_path / "still.png", "--max-frames", "1") == 0
    assert picture(tmp_path / "still.png").width == 128
