"""File output: a :class:`~streamer.sinks.video.VideoOutput` into a :class:`FileTarget`, with
audio and subtitles remuxed untouched.

Crash safety: MP4 and MOV are written fragmented by default (an empty ``moov`` up front, then a
``moof`` + ``mdat`` fragment at every keyframe, with a keyframe at least every two seconds), so
after SIGKILL or a power cut the file plays up to its last fragment, whole groups of pictures
(fragments cut by duration had ended inside a B-frame group: the last one a SIGKILL left lacked
the two frames shown before its last); a classic MP4 (``encode.fragmented: false``) would be
unplayable without its index. Matroska and MPEG-TS need nothing: they play truncated.
A run that wrote no frame leaves no file behind.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container

from streamer.errors import ConfigError, SinkError
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.video import VideoOutput

__all__ = ["FileSink", "FileTarget", "check_output_path"]
_FRAGMENTED_MUXERS = {"mp4", "mov", "ipod"}
_NO_PTS_MUXERS = {"avi"}  # decode timestamps only: B-frames cannot be ordered
# delay_moov: the header waits for the first fragment, so that its edit list knows the
# B-frame delay (without it every pts came out two frames late); flush_packets: each fragment
# reaches the disk, not an I/O buffer, before the next is made.
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof",
               "flush_packets": "1"}
FRAGMENT_GOP_S = 2.0  # a keyframe, so a fragment, at least this often (x264's own: 10 s)


@functools.cache
def _muxer_extensions() -> dict[str, str]:
    """File extension -> FFmpeg muxer, for every muxer this FFmpeg build has."""
    table: dict[str, str] = {}
    for name in sorted(av.formats_available):
        try:
            muxer = av.format.ContainerFormat(name, "w")
        except ValueError:  # a demuxer only
            continue
        for extension in muxer.extensions:
            table.setdefault(extension.lower(), name)
    return table


def check_output_path(path: str) -> None:
    """Refuse a file name whose extension no muxer of this FFmpeg writes (one line, early)."""
    extension = Path(path).suffix.lower().lstrip(".")
    if extension not in _muxer_extensions():
        raise ConfigError(f"output {path!r}: no muxer for the extension {extension or '(none)'!r}; "
                          "use .mp4, .mkv, .mov, .webm, .ts, ...")


@dataclass(frozen=True)
class FileTarget:
    """A video file (any container this FFmpeg writes, by its extension)."""

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
        muxer = _muxer_extensions().get(self.path.suffix.lower().lstrip("."))
        ours = _FRAGMENTED if settings.fragmented and muxer in _FRAGMENTED_MUXERS else {}
        given = settings.muxer_options  # the user's win over ours
        try:
            return av.open(str(self.path), "w", options=dict(given), container_options={
                k: v for k, v in ours.items() if k not in given})
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot write {self.path}: {error}") from error

    def encoder_options(self, options: dict[str, str], codec: str, rate: Fraction | None,
                        settings: EncodeSettings) -> dict[str, str]:
        """No B-frames into a container that stores no presentation time (AVI: a player
        derives pts from the decode order, and every frame had come out a frame late); a
        fragmented MP4 gets a keyframe every FRAGMENT_GOP_S seconds at least. The user's own
        ``bf`` and ``g`` win."""
        muxer = _muxer_extensions().get(self.path.suffix.lower().lstrip("."))
        if muxer in _NO_PTS_MUXERS:
            return {"bf": "0", **options}
        if settings.fragmented and muxer in _FRAGMENTED_MUXERS:
            return {"g": str(round(FRAGMENT_GOP_S * (rate or 25))), **options}
        return options

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
