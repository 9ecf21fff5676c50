"""Standard output (``-o -``, ``pipe:1``) or another open descriptor (``pipe:N``) as a video
output, in the container ``encode.format`` names (there is no extension to go by), for
``ffmpeg ... | hdm-stream run - -o - -f matroska | ffplay -``.

Nothing seeks in a pipe: MP4 goes fragmented as a file does (file.py), and nothing is read
back. Standard output then carries the stream alone: its descriptor is handed to the muxer
and the process's own stdout is pointed at stderr, so that a line a library prints cannot
corrupt the stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import av.container

from streamer.errors import ConfigError, SinkError
from streamer.sinks.containers import container_encoder_options, container_options
from streamer.sinks.encoder import EncodeSettings

__all__ = ["STDOUT", "PipeTarget", "pipe_descriptor"]

STDOUT = ("-", "pipe:", "pipe:1")


def pipe_descriptor(target: str) -> int | None:
    """The descriptor an output names (``-``: 1, ``pipe:N``: N), None for anything else."""
    if target in STDOUT:
        return 1
    number = target.removeprefix("pipe:")
    return int(number) if target.startswith("pipe:") and number.isdigit() else None


@dataclass(frozen=True)
class PipeTarget:
    """The open descriptor ``fd`` (1: standard output)."""

    fd: int = 1
    name = "pipe"

    @property
    def label(self) -> str:
        return "stdout" if self.fd == 1 else f"pipe:{self.fd}"

    @property
    def named_for(self) -> str:
        return self.label  # no extension: the codec follows encode.format (formats.py)

    def prepare(self) -> None:
        """Nothing to prepare: the descriptor is open."""

    def open_container(self, settings: EncodeSettings) -> av.container.OutputContainer:
        if settings.format is None:
            raise ConfigError(f"writing to {self.label} needs its container: -f matroska, "
                              "mpegts, nut, mp4, ...")
        fd = self.fd
        if fd == 1:
            fd = os.dup(1)
            os.dup2(2, 1)  # the process's own prints go to stderr from now on
        try:
            return av.open(f"pipe:{fd}", "w", format=settings.format,
                           options=dict(settings.muxer_options),
                           container_options=container_options(settings.format, settings))
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot write to {self.label}: {error}") from error

    def encoder_options(self, options: dict[str, str], codec: str, rate: Fraction | None,
                        settings: EncodeSettings) -> dict[str, str]:
        return container_encoder_options(settings.format, options, rate, settings)

    def discard(self) -> None:
        """Nothing is left of a stream."""

    @property
    def written(self) -> None:
        """A stream is not read back."""
        return None
