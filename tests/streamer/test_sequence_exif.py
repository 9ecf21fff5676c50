"""An image sequence into pictures keeps each picture's EXIF (issue 20, 7): the camera's tags
and its orientation as stored, picture for picture (the output's Nth from the input's Nth,
whatever number the input starts at), so a viewer shows each as it showed the input; a
format that holds no EXIF says so once."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.media.photo import EXIF, exif_orientation, read_metadata
from streamer.media.sequence import numbered
from tests.streamer.commands import run
from tests.streamer.test_photos import (
    MAKE,
    camera_exif,
    ffmpeg_picture,
    pixels_of,
    with_metadata,
)

ORIENTATIONS = (6, 3, 1)  # a portrait shot stored sideways, one upside down, one upright


def camera_sequence(folder: Path, first: int = 7) -> str:
    """JPEGs numbered from ``first``, each with its own orientation and the camera's make."""
    stored = ffmpeg_picture(folder / "ffmpeg.jpg", "-q:v", "2")
    pattern = str(folder / "%05d.jpg")
    for n, orientation in enumerate(ORIENTATIONS, first):
        with_metadata(numbered(pattern, n), stored, {EXIF: camera_exif(orientation)})
    return pattern


@pytest.mark.parametrize("into", ["jpg", "png"])
def test_each_picture_keeps_its_own_exif(tmp_path: Path, into: str) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    pattern = camera_sequence(tmp_path / "in")
    out = str(tmp_path / "out" / f"%05d.{into}")
    assert run(pattern, "-o", out) == 0
    for n, orientation in enumerate(ORIENTATIONS, 1):
        exif = read_metadata(numbered(out, n))[EXIF]
        assert MAKE.rstrip(b"\x00") in exif and exif_orientation(exif)[0] == orientation
        assert pixels_of(numbered(out, n)).shape[:2] == (120, 160)  # stored as the input was


def test_a_format_without_exif_says_so_once(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    pattern = camera_sequence(tmp_path / "in")
    assert run(pattern, "-o", tmp_path / "out" / "%05d.bmp") == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "left out" in line]
    assert len(said) == 1 and "a bmp file cannot hold the input's EXIF" in said[0], said
    assert read_metadata(tmp_path / "out" / "00003.bmp") == {}
