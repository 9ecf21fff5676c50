"""An input stream's way into an output container, packet by packet: a :class:`CopiedTrack`
(the packets as they are, with the stream's tags and dispositions) or an
:class:`EncodedTrack` (audio decoded and encoded again), and :func:`holds`, whether a muxer
takes such a stream at all, found by writing one in memory.

ADTS AAC (an MPEG-TS camera's, a raw .aac's: no codec config, a header on every packet) is
turned into MP4's form (``aac_adtstoasc``) for every container but MPEG-TS, which wants ADTS,
and AVI, which FFmpeg writes it into as ADTS under its own tag: the MP4 muxer refuses an ADTS
packet (EPERM, "Malformed AAC bitstream") whenever FFmpeg's automatic filter does not run, as
in a fragmented MP4.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from fractions import Fraction
from typing import Final, Protocol, TypeAlias

import av
import av.container
import av.stream
from av.bitstream import BitStreamFilterContext

from streamer.media.convert import content_tags

__all__ = ["CopiedTrack", "EncodedTrack", "Packets", "Track", "encoder_stream", "holds",
           "keep_labels"]

log = logging.getLogger(__name__)
# A string, not a `type` statement: PyAV's Packet is not subscriptable at run time.
Packets: TypeAlias = "list[av.Packet[av.stream.Stream]]"
_ADTS_AS_IT_IS = {"mpegts", "adts"}
_ADTS_AVI_TAG = "\x10\x16\x00\x00"  # WAVE_FORMAT_MPEG_HEAAC (0x1610): FFmpeg's for ADTS in AVI
_NEW_EXTRADATA: Final = "new_extradata"


class Track(Protocol):
    """One input stream's copy in an output: ``stream`` is the output's."""

    @property
    def stream(self) -> av.stream.Stream:
        """The output's stream."""

    def packets(self, packet: av.Packet[av.stream.Stream]) -> Packets:
        """The output's packets for one input packet (none, one or several)."""

    def before_header(self) -> None:
        """What the packets held so far taught the stream's parameters (a codec config)."""

    def flush(self) -> Packets:
        """What is still held, at the end."""


def keep_labels(copy: av.stream.Stream, stream: av.stream.Stream) -> None:
    """The stream's content tags (title, language, handler name) and dispositions (default,
    forced, comment, hearing impaired ...). MOV/MP4 keep a track's title as its ``name``
    (FFmpeg reads it back under that key but writes it from ``title``): it is a title again."""
    tags = content_tags(stream.metadata)
    if "name" in tags and "title" not in tags:
        tags["title"] = tags.pop("name")
    copy.metadata.update(tags)
    copy.disposition = stream.disposition


def _adts(stream: av.stream.Stream) -> bool:
    context = stream.codec_context
    return context is not None and context.name == "aac" and not context.extradata


class CopiedTrack:
    """The input stream's packets as they are, into ``container`` (ADTS AAC into MP4's form
    where the container wants that: see the module's docstring)."""

    def __init__(self, container: av.container.OutputContainer,
                 stream: av.stream.Stream) -> None:
        self.stream = self.add(container, stream)
        keep_labels(self.stream, stream)
        muxer = container.format.name
        to_asc = _adts(stream) and muxer not in _ADTS_AS_IT_IS and muxer != "avi"
        self._filter = BitStreamFilterContext("aac_adtstoasc", stream) if to_asc else None
        self._config: bytes | None = None  # the AAC config the filter found
        self._header_to_come = True

    @staticmethod
    def add(container: av.container.OutputContainer,
            stream: av.stream.Stream) -> av.stream.Stream:
        """The copy's stream in ``container`` (also for a trial: see :func:`holds`)."""
        copy = container.add_stream_from_template(stream)
        if _adts(stream) and container.format.name == "avi":
            assert copy.codec_context is not None
            copy.codec_context.codec_tag = _ADTS_AVI_TAG
        return copy

    def packets(self, packet: av.Packet[av.stream.Stream]) -> Packets:
        if self._filter is None:
            packet.stream = self.stream
            return [packet]
        out = [self._found_config(p) for p in self._filter.filter(packet)]
        for each in out:
            each.stream = self.stream
        return out

    def _found_config(self, packet: av.Packet[av.stream.Stream]) -> av.Packet[av.stream.Stream]:
        """The filter gives the AAC config with its first packet, for the muxer to take. It
        goes into the header where that is still to come (an MP4 with ``empty_moov`` writes
        its index then: without it the track would not play), and the packet then goes
        without it (Matroska, given it again, rewrote its header over the next bytes)."""
        if self._config is not None or not packet.has_sidedata(_NEW_EXTRADATA):
            return packet
        self._config = bytes(packet.get_sidedata(_NEW_EXTRADATA))
        if not self._header_to_come:
            return packet
        bare: av.Packet[av.stream.Stream] = av.Packet(bytes(packet))
        bare.pts, bare.dts, bare.duration = packet.pts, packet.dts, packet.duration
        bare.time_base, bare.is_keyframe = packet.time_base, packet.is_keyframe
        return bare

    def before_header(self) -> None:
        self._header_to_come = False
        if self._config is not None and self.stream.codec_context is not None:
            self.stream.codec_context.extradata = self._config

    def flush(self) -> Packets:
        if self._filter is None:
            return []
        out = self._filter.filter(None)
        for each in out:
            each.stream = self.stream
        return out


def _decoder(stream: av.stream.Stream) -> tuple[av.container.OutputContainer,
                                                 av.AudioCodecContext]:
    """A decoder of the stream's own, with all its parameters (G.726's bits per sample,
    ADPCM's block size, AAC's config): PyAV copies a stream's full parameters into a codec
    context only for a stream of an output container, and the null muxer's takes any codec.
    The holder is returned with it (the context is its stream's)."""
    holder = av.open(io.BytesIO(), "w", format="null")
    context = holder.add_stream_from_template(stream, opaque=True).codec_context
    assert isinstance(context, av.AudioCodecContext)
    return holder, context


def encoder_stream(container: av.container.OutputContainer, stream: av.stream.Stream,
                   codec: str) -> av.AudioStream:
    """An audio stream of ``codec`` for ``stream``'s sound: its rate where the encoder takes
    it (else the nearest it does), its channels, its sample format where the encoder takes it
    (a PCM encoder then writes the very samples decoded)."""
    source = stream.codec_context
    assert isinstance(source, av.AudioCodecContext)
    encoder = av.Codec(codec, "w")
    rate = source.sample_rate
    if encoder.audio_rates and rate not in encoder.audio_rates:
        rate = min(encoder.audio_rates, key=lambda r: (r < rate, abs(r - rate)))
    audio = container.add_stream(codec, rate=rate)
    assert isinstance(audio, av.AudioStream)
    layout = source.layout
    audio.layout = layout if layout.name != f"{layout.nb_channels} channels" else (
        f"{layout.nb_channels}c")  # an unspecified order: the usual layout of that many
    formats = [f.name for f in encoder.audio_formats or ()]
    own = [] if source.format is None else [source.format.name, source.format.packed.name]
    chosen = next((f for f in own if f in formats), formats[0] if formats else None)
    if chosen is not None:
        audio.format = chosen
    audio.time_base = Fraction(1, rate)
    return audio


class EncodedTrack:
    """The input stream decoded and encoded again as ``codec`` (PyAV's encoder converts the
    sample format, rate and frame size); pts carried over from the input's."""

    def __init__(self, container: av.container.OutputContainer, stream: av.stream.Stream,
                 codec: str, label: str) -> None:
        self._holder, self._decoder = _decoder(stream)
        self.stream = encoder_stream(container, stream, codec)
        keep_labels(self.stream, stream)
        self._what = f"{label}: audio stream #{stream.index}"
        self._skipped = 0

    def packets(self, packet: av.Packet[av.stream.Stream]) -> Packets:
        if not packet.size:
            return []
        try:
            frames = self._decoder.decode(packet)
        except av.error.InvalidDataError:
            self._skipped += 1
            if self._skipped == 1:
                log.warning("%s: a packet that does not decode was left out", self._what)
            return []
        return [p for frame in frames for p in self._encode(frame)]

    def _encode(self, frame: av.AudioFrame | None) -> Packets:
        assert isinstance(self.stream, av.AudioStream)
        out: Packets = list(self.stream.encode(frame))
        return out

    def before_header(self) -> None:
        """Nothing: the encoder gives its parameters itself."""

    def flush(self) -> Packets:
        out = [p for frame in self._decoder.decode(None) for p in self._encode(frame)]
        return out + self._encode(None)


def holds(muxer: str, add: Callable[[av.container.OutputContainer], av.stream.Stream]) -> bool:
    """A ``muxer`` file can take the stream ``add`` makes (a copy, an encoder): PyAV's check
    of the codec, then a header written in memory with it (MOV refuses FLAC and Opus only
    there, Matroska a GoPro gpmd track). Audio is also muxed (three empty packets) and read
    back: MPEG-TS writes a codec it has no stream type for (PCM, G.711, FLAC) as private data,
    which reads back as data, not sound; only a stream read back as something else refuses
    (a muxer that needs real packets to write its header is not judged by empty ones). A
    header refused is tried again behind a video stream, as every output has one (MXF takes
    no sound without it, nor DV: their PCM into .mxf or .dv had been refused)."""
    return any(_holds(muxer, add, behind_video) for behind_video in (False, True))


def _holds(muxer: str, add: Callable[[av.container.OutputContainer], av.stream.Stream],
           behind_video: bool) -> bool:
    buffer = io.BytesIO()
    try:
        trial = av.open(buffer, "w", format=muxer)
    except (av.error.FFmpegError, ValueError, OSError):
        return False
    try:
        if behind_video:  # the muxer's own video codec, at a size DV takes too
            video = trial.add_stream(trial.default_video_codec, rate=25)
            assert isinstance(video, av.VideoStream)
            video.width, video.height = 720, 576
        stream = add(trial)
        trial.start_encoding()
    except (av.error.FFmpegError, ValueError, OSError):
        with contextlib.suppress(av.error.FFmpegError, ValueError, OSError):
            trial.close()
        return False
    audio = stream.type == "audio"
    try:
        if audio:
            _mux_empty(trial, stream)
    except (av.error.FFmpegError, ValueError, OSError):
        return True  # the header was written: that is the verdict
    finally:
        with contextlib.suppress(av.error.FFmpegError, ValueError, OSError):
            trial.close()  # a trailer with no packet may fail: the header is what counts
    return not audio or _reads_back_as_audio(buffer)


def _mux_empty(trial: av.container.OutputContainer, stream: av.stream.Stream) -> None:
    context = stream.codec_context
    rate = context.sample_rate if isinstance(context, av.AudioCodecContext) else 48_000
    for n in range(3):
        packet = av.Packet(bytes(256))
        packet.stream, packet.time_base = stream, Fraction(1, rate or 48_000)
        packet.pts = packet.dts = n * 1024
        packet.duration = 1024
        trial.mux(packet)


def _reads_back_as_audio(buffer: io.BytesIO) -> bool:
    """False only when the trial file's last stream (the one tried) comes back as something
    other than sound."""
    buffer.seek(0)
    try:
        with av.open(buffer) as back:
            streams = list(back.streams)
            if not streams:
                return True
            return streams[-1].type == "audio" and streams[-1].codec_context is not None
    except (av.error.FFmpegError, ValueError, OSError):
        return True
