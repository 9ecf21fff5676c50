"""File output: a :class:`~streamer.sinks.video.VideoOutput` into a :class:`FileTarget`, with
audio and subtitles remuxed untouched, in the container its extension (or ``encode.format``)
names, fragmented where that is MP4 or MOV (containers.py). A run that wrote no frame leaves no
file behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container

from streamer.errors import ConfigError, SinkError
from streamer.media.sequence import is_pattern
from streamer.sinks.containers import (
    container_encoder_options,
    container_options,
    muxer_extensions,
    muxer_for,
)
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.pipe import pipe_descriptor
from streamer.sinks.video import VideoOutput

__all__ = ["FileSink", "FileTarget", "check_output_path"]


def check_output_path(path: str, format: str | None = None) -> None:
    """Refuse early, in one line, an output nothing here writes: a file name whose extension
    no muxer of this FFmpeg takes, or a pipe with no ``format`` (``-f``) to write it in."""
    if format is not None:
        return  # EncodeSettings checked that it names a muxer
    if pipe_descriptor(path) is not None:
        raise ConfigError(f"output {path!r} is a pipe, with no extension to choose its "
                          "container: give one with -f (matroska, mpegts, nut, mp4, ...)")
    extension = Path(path).suffix.lower().lstrip(".")
    if extension not in muxer_extensions():
        hint = " (an image sequence numbers its files: %05d)" if is_pattern(path) else ""
        raise ConfigError(f"output {path!r}: no muxer for the extension {extension or '(none)'!r}"
                          f"{hint}; use .mp4, .mkv, .mov, .webm, .ts, .png, .jpg, ... or -f")


@dataclass(frozen=True)
class FileTarget:
    """A video file (any container this FFmpeg writes, by its extension or
    ``encode.format``)."""

    path: Path
    name = "file"

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def named_for(self) -> str:
        return str(self.path)

    def prepare(self) -> None:
        """Nothing to prepare: the folder must exist."""

    def open_container(self, settings: EncodeSettings) -> av.container.OutputContainer:
        if not self.path.parent.is_dir():
            raise SinkError(f"output folder does not exist: {self.path.parent}")
        muxer = muxer_for(self.path, settings)
        try:
            return av.open(str(self.path), "w", format=settings.format,
                           options=dict(settings.muxer_options),
                           container_options=container_options(muxer, settings))
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot write {self.path}: {error}") from error

    def encoder_options(self, options: dict[str, str], codec: str, rate: Fraction | None,
                        settings: EncodeSettings) -> dict[str, str]:
        return container_encoder_options(muxer_for(self.path, settings), options, rate,
                                         settings)

    def discard(self) -> None:
        """A file that got no frame is removed."""
        self.path.unlink(missing_ok=True)

    @property
    def written(self) -> Path:
        return self.path


class FileSink(VideoOutput):
    """Writes frames in arrival order into a file (a :class:`~streamer.sinks.base.Sink`);
    nothing is dropped, audio and subtitles are copied. A video output with a
    :class:`FileTarget`, by its usual name."""

    def __init__(self, path: str | Path, settings: EncodeSettings = EncodeSettings()) -> None:
        self.path = Path(path)
        super().__init__(FileTarget(self.path), settings)
