"""What becomes of each audio track of the input in an output container.

- ``copy`` (the default): copied as it is wherever the container holds the codec as FFmpeg
  writes it (see tracks.py for ADTS AAC). A waveform codec (PCM of another kind, G.711, ADPCM,
  G.722/G.726) the container refuses is decoded to plain PCM of the same samples, where the
  container holds that: PyAV's muxers take only what FFmpeg accepts at normal compliance, and
  Matroska's Windows (ACM) route for G.711 and ADPCM, which the ffmpeg tool writes, is not
  (nor is it Matroska's own PCM, which every player reads). The samples are the ones any
  player decodes, exactly; only the size grows (twice for G.711, four times for ADPCM: small
  beside the video). Anything else the container cannot hold is one error naming the stream
  and the containers that can, or ``--audio-codec``.
- an encoder (``--audio-codec aac``, ``encode.audio_codec``): every audio track transcoded
  to it, as ffmpeg's ``-c:a`` does.
"""

from __future__ import annotations

import functools
import logging

import av
import av.container
import av.stream

from streamer.errors import ConfigError
from streamer.sinks.tracks import CopiedTrack, EncodedTrack, Track, encoder_stream, holds

__all__ = ["COPY", "audio_track", "codec_name", "containers_holding"]

log = logging.getLogger(__name__)
COPY = "copy"
_CONTAINERS = (("mkv", "matroska"), ("mov", "mov"), ("mp4", "mp4"), ("ts", "mpegts"),
               ("avi", "avi"))
# FFmpeg's AVI muxer times these by bytes at their nominal bit rate (it cannot tell how many
# samples a block holds): a copy read back half as long again, the ffmpeg tool's too.
_BYTE_TIMED_IN_AVI = {"adpcm_ms", "adpcm_ima_wav"}
_PCM = {"u8": "pcm_u8", "s16": "pcm_s16le", "s32": "pcm_s32le", "flt": "pcm_f32le",
        "dbl": "pcm_f64le"}  # the decoder's sample format (packed) -> its PCM


def codec_name(stream: av.stream.Stream) -> str:
    """FFmpeg's name of the codec (adpcm_g722, mp3), not its decoder's (g722, mp3float)."""
    if stream.codec_context is not None:
        return str(stream.codec_context.codec.canonical_name)
    return str(getattr(stream, "name", None) or "data")


def containers_holding(stream: av.stream.Stream, muxer: str) -> str:
    """``.mov or .mkv can hold it`` (two at most, not ``muxer``), for a message: audio as it
    is or as the same samples, other streams as they are."""
    def fits(other: str) -> bool:
        if stream.type == "audio":
            return _way_in(other, stream) is not None
        return holds(other, functools.partial(CopiedTrack.add, stream=stream))

    others = [f".{extension}" for extension, other in _CONTAINERS if other != muxer and fits(other)]
    return f"{' or '.join(others[:2])} can hold it" if others else "no container here can"


def audio_track(container: av.container.OutputContainer, stream: av.stream.Stream,
                codec: str, label: str) -> Track:
    """How ``stream`` goes into ``container`` (``codec``: ``copy`` or an encoder); a
    ConfigError when it cannot."""
    muxer = container.format.name
    what = f"the input's audio {codec_name(stream)} (stream #{stream.index})"
    if codec != COPY:
        if not isinstance(stream.codec_context, av.AudioCodecContext):
            raise ConfigError(f"{label}: this FFmpeg cannot decode {what}, so it cannot be "
                              f"transcoded to {codec}")
        if not holds(muxer, functools.partial(encoder_stream, stream=stream, codec=codec)):
            raise ConfigError(f"{label}: a {muxer} file cannot hold {codec} audio (for "
                              f"{what}): choose another --audio-codec or container")
        return EncodedTrack(container, stream, codec, label)
    way = _way_in(muxer, stream)
    if way == COPY:
        return CopiedTrack(container, stream)
    if way is not None:
        log.info("%s: a %s file cannot hold %s as it is: written as %s, the same samples",
                 label, muxer, what, way)
        return EncodedTrack(container, stream, way, label)
    raise ConfigError(f"{label}: a {muxer} file cannot hold {what}; "
                      f"{containers_holding(stream, muxer)} (or --audio-codec aac transcodes "
                      "it)")


def _way_in(muxer: str, stream: av.stream.Stream) -> str | None:
    """``copy``, the PCM codec that holds the same samples, or None (neither fits)."""
    if (holds(muxer, functools.partial(CopiedTrack.add, stream=stream))
            and not (muxer == "avi" and codec_name(stream) in _BYTE_TIMED_IN_AVI)):
        return COPY
    return next((pcm for pcm in _same_samples(stream)
                 if holds(muxer, functools.partial(encoder_stream, stream=stream, codec=pcm))),
                None)


def _same_samples(stream: av.stream.Stream) -> list[str]:
    """The PCM codecs that hold a waveform codec's decoded samples exactly: its own sample
    format's (24 bits kept as 24), then 16-bit (8-bit samples fit it exactly); none for a
    perceptual codec (AAC, Opus, AC-3 ...), whose PCM would be ten times its size."""
    name = codec_name(stream)
    context = stream.codec_context
    if (not name.startswith(("pcm_", "adpcm_")) or not isinstance(context, av.AudioCodecContext)
            or context.format is None):
        return []
    packed = context.format.packed.name
    own = "pcm_s24le" if "24" in name else _PCM.get(packed)
    fits_16 = packed in ("u8", "s16")
    return [c for c in dict.fromkeys([own, "pcm_s16le" if fits_16 else None]) if c]
