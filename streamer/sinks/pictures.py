"""Pictures out of a video: every frame as a file of an image sequence (``out/%05d.png``,
numbered from 1 as FFmpeg's image2 muxer numbers them) or one still (``out.png``, from a run
of one frame), written as photos are (streamer/media/photo.py): 8 or 16 bits as the frames
come where the format has them, full-range RGB, no encoder in between. Out of an image
sequence, each picture takes its input picture's metadata (EXIF with the camera's tags and its
orientation as stored, XMP, ICC) where the format holds it: the pixels are the input's as
stored, enhanced, so the same orientation shows them as the input showed (FFmpeg's image
decoders keep no EXIF, so it is read from the input's file of the same number)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from streamer.errors import SinkError
from streamer.frames import RGB, Passthrough, StreamInfo
from streamer.media.photo import read_metadata, write_photo
from streamer.media.sequence import find_sequence, is_pattern, numbered
from streamer.queues import Policy
from streamer.sinks.base import Output

__all__ = ["PicturesOutput", "PicturesTarget"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PicturesTarget:
    """An image sequence's ``pattern`` (a ``%05d`` in its file name) or one still's path;
    ``metadata_from``: the input's image sequence, whose pictures' metadata is written again."""

    pattern: str
    metadata_from: str | None = None

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
        self._first_input: int | None = None  # the input sequence's first number
        self._warned = False

    def open(self, info: StreamInfo) -> None:
        folder = self.target.first().parent
        if not folder.is_dir():
            raise SinkError(f"output folder does not exist: {folder}")
        left_out = sorted({stream.type for stream in info.passthrough})
        if left_out:
            log.warning("%s: pictures hold no %s: the input's are left out", self.target.pattern,
                        " or ".join(left_out))
        if self.target.metadata_from is not None:
            self._first_input = find_sequence(self.target.metadata_from).start

    def write(self, output: Output) -> None:
        if self.target.still and self.frames_written:
            raise SinkError(f"{self.target.pattern} holds one picture: name a sequence "
                            "(out_%05d.png) for every frame, or give --max-frames 1")
        number = self.frames_written + 1
        path = self.target.first() if self.target.still else numbered(self.target.pattern,
                                                                       number)
        left_out = write_photo(path, output.enhanced.image, metadata=self._metadata(output))
        if left_out and not self._warned:
            self._warned = True
            log.warning("%s: a %s file cannot hold the input's %s: left out",
                        self.target.pattern, path.suffix.lstrip("."), ", ".join(left_out))
        self.frames_written += 1

    def _metadata(self, output: Output) -> dict[int, bytes]:
        """The metadata of the input picture this frame was decoded from ({} but for an
        image sequence's)."""
        if self.target.metadata_from is None or self._first_input is None:
            return {}
        return read_metadata(numbered(self.target.metadata_from,
                                      self._first_input + output.original.seq))

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
