"""Image sequences named as FFmpeg's image2 names them: ``frames/%05d.png`` (``%d``: any
number of digits; ``%0Nd``: N at least), for input and output alike.

FFmpeg looks for the first picture among the numbers 0 to 4 only; here the lowest number
present is found and handed to it (``start_number``), so a sequence cut from 1200 on reads as
well. Like FFmpeg, reading stops at the first number missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from streamer.errors import SourceError

__all__ = ["ImageSequence", "find_sequence", "is_pattern", "numbered"]

_NUMBER = re.compile(r"%(0\d+)?d")


def is_pattern(path: str) -> bool:
    """``path``'s file name holds a frame number (``%d``, ``%05d``) and names no file itself."""
    return bool(_NUMBER.search(Path(path).name)) and not Path(path).exists()


def numbered(pattern: str, number: int) -> Path:
    """The file of ``number`` in ``pattern``."""
    path = Path(pattern)

    def digits(found: re.Match[str]) -> str:
        return f"{number:{found.group(1) or ''}d}"

    return path.with_name(_NUMBER.sub(digits, path.name, count=1))


@dataclass(frozen=True)
class ImageSequence:
    """The files of ``pattern`` from ``start``, ``frames`` of them without a gap."""

    pattern: str
    start: int
    frames: int


def find_sequence(pattern: str) -> ImageSequence:
    """The sequence ``pattern`` names on disk; SourceError when no file matches."""
    path = Path(pattern)
    number = _NUMBER.search(path.name)
    if number is None:
        raise SourceError(f"{pattern} holds no frame number (%d, %05d)")
    head, tail = path.name[:number.start()], path.name[number.end():]
    matcher = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))
    folder = path.parent
    names = [entry.name for entry in folder.iterdir()] if folder.is_dir() else []
    numbers = sorted(int(found.group(1)) for name in names
                     if (found := matcher.fullmatch(name))
                     and numbered(pattern, int(found.group(1))).name == name)
    if not numbers:
        raise SourceError(f"no picture matches {pattern} (as FFmpeg numbers them: %d, %05d)")
    start = numbers[0]
    frames = 1
    while numbered(pattern, start + frames).is_file():
        frames += 1
    return ImageSequence(pattern, start, frames)
