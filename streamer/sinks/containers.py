"""What an output's container asks of its muxer and encoder, whoever opens it (a file, a
pipe): its muxer by name or extension, the fragments of MP4/MOV, no B-frames into AVI.

Crash safety: MP4 and MOV are written fragmented by default (an empty ``moov`` up front, then a
``moof`` + ``mdat`` fragment at every keyframe, with a keyframe at least every two seconds), so
after SIGKILL or a power cut the file plays up to its last fragment, whole groups of pictures
(fragments cut by duration had ended inside a B-frame group: the last one a SIGKILL left lacked
the two frames shown before its last); a classic MP4 (``encode.fragmented: false``) would be
unplayable without its index. Matroska and MPEG-TS need nothing: they play truncated. A pipe
cannot be seeked in, so an MP4 there must be fragmented anyway.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import av

from streamer.sinks.encoder import EncodeSettings

__all__ = ["FRAGMENT_GOP_S", "container_encoder_options", "container_options", "muxer_for",
           "muxer_extensions"]

_FRAGMENTED_MUXERS = {"mp4", "mov", "ipod"}
_NO_PTS_MUXERS = {"avi"}  # decode timestamps only: B-frames cannot be ordered
# delay_moov: the header waits for the first fragment, so that its edit list knows the
# B-frame delay (without it every pts came out two frames late); flush_packets: each fragment
# reaches the disk, not an I/O buffer, before the next is made.
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof",
               "flush_packets": "1"}
FRAGMENT_GOP_S = 2.0  # a keyframe, so a fragment, at least this often (x264's own: 10 s)


@functools.cache
def muxer_extensions() -> dict[str, str]:
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


def muxer_for(path: Path, settings: EncodeSettings) -> str | None:
    """The muxer ``encode.format`` names, else the one ``path``'s extension implies."""
    return settings.format or muxer_extensions().get(path.suffix.lower().lstrip("."))


def container_options(muxer: str | None, settings: EncodeSettings) -> dict[str, str]:
    """Our muxer options: fragments for MP4/MOV; the user's own muxer options win."""
    ours = _FRAGMENTED if settings.fragmented and muxer in _FRAGMENTED_MUXERS else {}
    return {k: v for k, v in ours.items() if k not in settings.muxer_options}


def container_encoder_options(muxer: str | None, options: dict[str, str],
                              rate: Fraction | None, settings: EncodeSettings
                              ) -> dict[str, str]:
    """No B-frames into a container that stores no presentation time (AVI: a player
    derives pts from the decode order, and every frame had come out a frame late); a
    fragmented MP4 gets a keyframe every FRAGMENT_GOP_S seconds at least. The user's own
    ``bf`` and ``g`` win."""
    if muxer in _NO_PTS_MUXERS:
        return {"bf": "0", **options}
    if settings.fragmented and muxer in _FRAGMENTED_MUXERS:
        return {"g": str(round(FRAGMENT_GOP_S * (rate or 25))), **options}
    return options
