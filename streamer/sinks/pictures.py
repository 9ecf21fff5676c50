"""Pictures out of a video: every frame as a file of an image sequence (``out/%05d.png``,
numbered from 1 as FFmpeg's image2 muxer numbers them) or one still (``out.png``, from a run
of one frame), written as photos are (streamer/media/photo.py): 8 or 16 bits as the frames
come where the format has them, full-range RGB, no encoder in between."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from streamer.errors import SinkError
from streamer.frames import RGB, Passthrough, StreamInfo
from streamer.media.photo import write_photo
from streamer.media.sequence import is_pattern, numbered
from streamer.queues import Policy
from streamer.sinks.base import Output

__all__ = ["PicturesOutput", "PicturesTarget"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PicturesTarget:
    """An image sequence's ``pattern`` (a ``%05d`` in its file name) or one still's path."""

    pattern: str

    @property
    def still(self) -> bool:
        return not is_pattern(self.pattern)

    def first(self) -> Path:
        """The first file written (the one that would be replaced)."""
        return Path(self.pattern) if self.still else numbered(self.pattern, 1)


class PicturesOutput:
    """Writes each enhanced frame as the next picture of ``target`` (a
    :class:`~streamer.sinks.base.Sink`); nothing is dropped, no sound kept (a picture has
    none: the input's audio is said to be left out)."""

    name = "pictures"
    accepts = RGB
    policy = Policy.BLOCK
    wants_packets = False
    unsent = 0

    def __init__(self, target: PicturesTarget) -> None:
        self.target = target
        self.frames_written = 0

    def open(self, info: StreamInfo) -> None:
        folder = self.target.first().parent
        if not folder.is_dir():
            raise SinkError(f"output folder does not exist: {folder}")
        left_out = sorted({stream.type for stream in info.passthrough})
        if left_out:
            log.warning("%s: pictures hold no %s: the input's are left out", self.target.pattern,
                        " or ".join(left_out))

    def write(self, output: Output) -> None:
        if self.target.still and self.frames_written:
            raise SinkError(f"{self.target.pattern} holds one picture: name a sequence "
                            "(out_%05d.png) for every frame, or give --max-frames 1")
        number = self.frames_written + 1
        path = self.target.first() if self.target.still else numbered(self.target.pattern,
                                                                       number)
        write_photo(path, output.enhanced.image)
        self.frames_written += 1

    def write_packet(self, packet: Passthrough) -> None:
        """No packets: pictures hold none."""

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        """Every picture is whole once written: nothing to finish."""

    def closed_state(self) -> str:
        """What was written, in words (a run stopped at once says it)."""
        if not self.frames_written:
            return f"{self.target.pattern}: no picture was written"
        last = numbered(self.target.pattern, self.frames_written) if not self.target.still \
            else self.target.first()
        return f"{self.target.pattern}: {self.frames_written} pictures written, the last {last}"
