"""File output: an :class:`AvOutput` into a file, with audio and subtitles remuxed untouched.

Crash safety: MP4 and MOV are written fragmented by default (an empty ``moov`` up front, then a
``moof`` + ``mdat`` fragment at every keyframe and at least every second), so after SIGKILL or a
power cut the file plays up to its last fragment; a classic MP4 (``encode.fragmented: false``)
would be unplayable without its index. Matroska and MPEG-TS need nothing: they play truncated.
A run that wrote no frame leaves no file behind.
"""

from __future__ import annotations

import functools
from pathlib import Path

import av
import av.container

from streamer.errors import ConfigError, SinkError
from streamer.queues import Policy
from streamer.sinks.av_output import AvOutput, EncodeSettings

__all__ = ["FileSink", "check_output_path"]
_FRAGMENTED_MUXERS = {"mp4", "mov", "ipod"}
# delay_moov: the header waits for the first fragment, so that its edit list knows the
# B-frame delay (without it every pts came out two frames late); flush_packets: each fragment
# reaches the disk, not an I/O buffer, before the next is made.
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof",
               "frag_duration": "1000000", "flush_packets": "1"}  # microseconds


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


class FileSink(AvOutput):
    """Writes frames in arrival order (a :class:`~streamer.sinks.base.Sink`); nothing is
    dropped."""

    name = "file"
    policy = Policy.BLOCK
    wants_packets = True

    def __init__(self, path: str | Path, settings: EncodeSettings = EncodeSettings()) -> None:
        super().__init__(str(path), settings)
        self.path = Path(path)
        self._created = False  # this sink made the file (and may remove it)

    def _open_container(self) -> av.container.OutputContainer:
        if not self.path.parent.is_dir():
            raise SinkError(f"output folder does not exist: {self.path.parent}")
        muxer = _muxer_extensions().get(self.path.suffix.lower().lstrip("."))
        ours = _FRAGMENTED if self.settings.fragmented and muxer in _FRAGMENTED_MUXERS else {}
        given = self.settings.muxer_options  # the user's win over ours
        try:
            container = av.open(str(self.path), "w", options=dict(given), container_options={
                k: v for k, v in ours.items() if k not in given})
        except (av.error.FFmpegError, OSError) as error:
            raise SinkError(f"cannot write {self.path}: {error}") from error
        self._created = True
        return container

    def close(self, error: BaseException | None = None) -> None:
        try:
            super().close(error)
        finally:
            if self._created and self.frames_written == 0:
                self.path.unlink(missing_ok=True)
