"""A file output read back once it is closed: never an empty or partial file reported as
written. The video packets a demuxer finds must be the ones the run wrote, and the trailer must
be there (for MP4/MOV: the boxes tile the file, with the ``moov`` index, and a fragmented file
ends with its ``mfra``). Anything else is an :class:`~streamer.errors.OutputIncompleteError`
saying what is missing (a tmcd track copied as data had left a MOV with no video packet at all,
exit 0, "wrote out.mov").

Reading back demuxes only (no decoding): a second of I/O for an hour of video.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av

from streamer.errors import OutputIncompleteError

__all__ = ["check_written"]

_ISO_MUXERS = {"mp4", "mov", "ipod", "3gp", "3g2", "ismv", "f4v", "psp"}


def check_written(path: Path, video_packets: int, muxer: str | None = None) -> None:
    """``path`` holds exactly ``video_packets`` video packets and its trailer (``muxer``: the
    FFmpeg muxer that wrote it, for the trailer check); OutputIncompleteError otherwise."""
    if muxer in _ISO_MUXERS:
        _check_boxes(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise OutputIncompleteError(f"{path} was written without its video stream "
                                            f"({video_packets} frames were encoded)")
            found = sum(1 for packet in container.demux(container.streams.video[0])
                        if packet.size)
    except av.error.FFmpegError as error:
        raise OutputIncompleteError(f"{path} cannot be read back: {error.strerror}") from error
    if found != video_packets:
        raise OutputIncompleteError(f"{path} holds {found} of the {video_packets} video packets "
                                    "written: the file is incomplete")


def _check_boxes(path: Path) -> None:
    """The top-level boxes of an ISO BMFF file tile it exactly; it has its ``moov``, and a
    fragmented one (``moof`` boxes) ends with the ``mfra`` its trailer writes."""
    names: list[bytes] = []
    size = path.stat().st_size
    with path.open("rb") as file:
        offset = 0
        while offset < size:
            file.seek(offset)
            head = file.read(16)
            if len(head) < 8:
                break
            length, name = struct.unpack(">I4s", head[:8])
            if length == 1 and len(head) == 16:
                length = struct.unpack(">Q", head[8:16])[0]
            elif length == 0:
                length = size - offset
            if length < 8:
                break
            names.append(name)
            offset += length
    if offset != size:
        raise OutputIncompleteError(f"{path} ends inside a box (at byte {size} of "
                                    f"{offset}): the file is incomplete")
    if b"moov" not in names:
        raise OutputIncompleteError(f"{path} has no index (moov): the file is incomplete")
    if b"moof" in names and names[-1] != b"mfra":
        raise OutputIncompleteError(f"{path} has no trailer (mfra): the file is incomplete")
