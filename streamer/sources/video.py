"""Video sources: files, image sequences, standard input, network streams, V4L2 cameras and
FFmpeg lavfi test sources, via PyAV.

A source decodes frames in its session's decode thread and yields :class:`Frame` objects and
the packets to remux untouched (audio and subtitles of a file, the audio of a live source).
Live sources reconnect with exponential backoff when the stream fails or stays silent past the
watchdog, and their timestamps are put on the run's wall clock, so that an outage stays a gap.
A file that ends before the end its header announces, or whose demuxer fails part-way, ends the
run normally with what was decoded and says so (``ended_early``); corrupt packets are skipped
and counted.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.container
import av.stream

from streamer.errors import ConfigError, SourceEndedError, SourceError
from streamer.frames import (
    FIELD_PROGRESSIVE,
    HDR_TRANSFERS,
    RGB,
    SDR_TAGS,
    Attachment,
    Frame,
    Layout,
    Passthrough,
    StreamInfo,
    is_interlaced,
)
from streamer.media.convert import content_tags, eight_bit, from_video_frame, offered_layouts
from streamer.media.sequence import ImageSequence, find_sequence, is_pattern
from streamer.sources.deinterlace import Deinterlacer

__all__ = ["ReconnectPolicy", "SourceKind", "VideoSource", "Window", "classify"]

log = logging.getLogger(__name__)

_NETWORK_SCHEMES = ("rtsp://", "rtsps://", "udp://", "tcp://", "http://", "https://", "srt://",
                    "rtmp://", "rtp://")
STDIN = ("-", "pipe:", "pipe:0")  # as the ffmpeg tool names its standard input


class SourceKind(enum.Enum):
    FILE = "file"
    SEQUENCE = "sequence"  # frames/%05d.png: FFmpeg's image2 (sequence.py)
    PIPE = "pipe"  # standard input: a stream of a container that needs no seeking
    NETWORK = "network"
    CAMERA = "camera"
    LAVFI = "lavfi"

    @property
    def live(self) -> bool:
        """Streams and cameras run in real time: they drop rather than block, and are reopened
        when they end or fail. Files and lavfi graphs make frames on demand, so they block
        (nothing is lost) and end."""
        return self in (SourceKind.NETWORK, SourceKind.CAMERA)

    @property
    def local(self) -> bool:
        """Read from this machine's files or standard input (what serve's HTTP API refuses
        unless the operator allows local sources)."""
        return self in (SourceKind.FILE, SourceKind.SEQUENCE, SourceKind.PIPE)


def classify(url: str) -> SourceKind:
    """Kind of an input string: ``lavfi:EXPR``, ``/dev/videoN``, a URL, ``-`` (standard
    input), an image sequence's pattern, or a file path."""
    if url in STDIN:
        return SourceKind.PIPE
    if url.startswith("lavfi:"):
        return SourceKind.LAVFI
    if url.startswith("/dev/video"):
        return SourceKind.CAMERA
    if url.lower().startswith(_NETWORK_SCHEMES):
        return SourceKind.NETWORK
    return SourceKind.SEQUENCE if is_pattern(url) else SourceKind.FILE


@dataclass(frozen=True)
class Window:
    """A stretch of a file's video by pts (in the video stream's time base): decoding starts
    at the keyframe at or before ``start`` (frames before ``start`` are not given out) and
    ends at the first frame at or past ``end`` (None: the file's end). A source with a window
    gives video only (a segment of a long file: the join copies the other streams once)."""

    start: int | None
    end: int | None


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source recovers.

    Args:
        watchdog_s: a live source with no frame for this long is reopened.
        backoff_initial_s, backoff_max_s: wait before the first retry, doubled up to the max.
        max_attempts: consecutive failed reopen attempts before giving up (None: never).
    """

    watchdog_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for name in ("watchdog_s", "backoff_initial_s", "backoff_max_s"):
            if getattr(self, name) <= 0:  # a wait of 0 would spin on a dead camera
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name):g}")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError(f"backoff_max_s must be >= backoff_initial_s "
                              f"({self.backoff_initial_s:g}), got {self.backoff_max_s:g}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1 or empty (never give up), "
                              f"got {self.max_attempts}")


class VideoSource:
    """Open with :meth:`open`, then iterate :meth:`read`; :meth:`stop` from any thread. Also a
    context manager (closes the input)."""

    def __init__(
        self,
        url: str,
        *,
        stream_id: str = "stream0",
        options: dict[str, str] | None = None,
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        max_frames: int | None = None,
        live: bool | None = None,
        tone_map: bool = False,
        deinterlace: bool = False,
        window: Window | None = None,
    ) -> None:
        """``live`` overrides what the kind implies (a real-time lavfi graph, ``...,realtime``,
        is a live source for testing; a network stream of a recorded file is not).
        ``tone_map``: HDR frames are turned into SDR BT.709 as decoded (streamer/media/hdr.py).
        ``deinterlace``: an interlaced input is made progressive (bwdif, frame for frame)."""
        self.url = url
        self.tone_map = tone_map
        self.deinterlace = deinterlace
        self.window = window
        self.max_frames = max_frames
        self.kind = classify(url)
        self.live = self.kind.live if live is None else live
        self.stream_id = stream_id
        self.options = dict(options or {})
        self.reconnect = reconnect
        self.reconnects = 0
        self.corrupt_packets = 0
        self.ended_early: str | None = None
        self._last_time_s: float | None = None  # presentation time of the last frame decoded
        self._clock_start: float | None = None  # live: monotonic time of the first packet
        self._offset_s: float | None = None  # live: this connection's shift onto that clock
        self._stop = threading.Event()
        self._container: av.container.InputContainer | None = None
        self._sequence: ImageSequence | None = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- opening ------------------------------------------------------------------------------
    def open(self) -> StreamInfo:
        """Open the input (once); raises SourceError with one clear line when it cannot."""
        if self.kind is SourceKind.FILE and not Path(self.url).is_file():
            raise SourceError(f"input file not found: {self.url}")
        if self.kind is SourceKind.SEQUENCE:
            self._sequence = find_sequence(self.url)
        self._container = self._open_container()
        video = self._container.streams.video[0]
        context = video.codec_context
        rate = _frame_rate(video)
        pixel_format = context.format.name if context.format is not None else "yuv420p"
        transfer = int(context.color_trc)
        layouts = (offered_layouts(pixel_format, context.width, context.height)
                   if context.format is not None else RGB)
        if self.tone_map and transfer in HDR_TRANSFERS:  # frames come as 8-bit SDR RGB
            layouts, transfer = frozenset({Layout.RGB24}), SDR_TAGS.transfer
            pixel_format = eight_bit(pixel_format)
        field_order = int(context.field_order or 0)
        if is_interlaced(field_order):
            log.warning("%s is interlaced: %s", self.url, "deinterlaced (bwdif), written "
                        "progressive" if self.deinterlace else "enhanced as woven frames and "
                        "written interlaced (--deinterlace gives the model progressive frames)")
            if self.deinterlace:
                field_order = FIELD_PROGRESSIVE
        return StreamInfo(
            stream_id=self.stream_id,
            name=self._name(),
            width=context.width,
            height=context.height,
            rate=rate,
            frames=self._announced(video),
            live=self.live,
            layouts=layouts,
            passthrough=tuple(self._passthrough_streams()),
            sample_aspect_ratio=context.sample_aspect_ratio or None,
            metadata=content_tags(self._container.metadata),
            video_metadata=self._video_tags(video),
            pixel_format=pixel_format,
            transfer=transfer,
            field_order=field_order,
            chapters=tuple(self._container.chapters()),
            attachments=tuple(Attachment(s.name or "attachment", s.mimetype or "", bytes(s.data))
                              for s in self._container.streams
                              if isinstance(s, av.stream.AttachmentStream)),
        )

    def _name(self) -> str:
        if self.kind is SourceKind.PIPE:
            return "stdin"
        local = self.kind in (SourceKind.FILE, SourceKind.SEQUENCE)
        return Path(self.url).name[:30] if local else self.url[:30]

    def _announced(self, video: av.VideoStream) -> int | None:
        """The frames the input says it has (a sequence: its files), no more than
        ``max_frames``; ``max_frames`` where the input says none (a live stream, and files
        whose container counts no frames: Matroska, MPEG-TS, WebM); None when neither says."""
        said = None if self.live else (
            self._sequence.frames if self._sequence else (video.frames or None))
        if said and self.max_frames:
            return min(said, self.max_frames)
        return said or self.max_frames

    def _video_tags(self, video: av.VideoStream) -> dict[str, str]:
        """The video stream's content tags, with the start timecode under ``timecode``
        wherever the input keeps it: the video stream's tags (MOV/MP4 show the tmcd track's
        there, Matroska as TIMECODE), a tmcd track's, or the container's (MXF)."""
        assert self._container is not None
        tags = {k: v for k, v in content_tags(video.metadata).items() if k.lower() != "timecode"}
        places = [video.metadata, *(s.metadata for s in self._container.streams
                                    if _rebuilt(s)), self._container.metadata]
        for place in places:
            found = next((v for k, v in place.items() if k.lower() == "timecode" and v), None)
            if found:
                tags["timecode"] = found
                break
        return tags

    def _passthrough_streams(self) -> list[av.stream.Stream]:
        """Streams a file output copies packet by packet: audio, subtitles and data of a file
        (not a timecode or chapter track: outputs write their own from the timecode and the
        chapters); the audio of a live source (a recording keeps its sound)."""
        if self._container is None or self.window is not None:
            return []
        kinds = ("audio",) if self.live else ("audio", "subtitle", "data")
        return [s for s in self._container.streams if s.type in kinds and not _rebuilt(s)]

    def _open_container(self) -> av.container.InputContainer:
        url, fmt, options = self.url, None, dict(self.options)
        if self.kind is SourceKind.LAVFI:
            url, fmt = self.url.removeprefix("lavfi:"), "lavfi"
        elif self.kind is SourceKind.CAMERA:
            fmt = "v4l2"
        elif self.kind is SourceKind.PIPE:
            url = "pipe:0"
        elif self._sequence is not None:
            fmt = "image2"
            options.setdefault("start_number", str(self._sequence.start))
        watchdog = self.reconnect.watchdog_s
        timeout = (watchdog, watchdog) if self.live else None
        if self.kind is SourceKind.NETWORK and url.startswith("udp://"):
            # Demux a UDP MPEG-TS stream as it arrives instead of probing for seconds.
            options.setdefault("fifo_size", "1000000")
            options.setdefault("overrun_nonfatal", "1")
        try:
            container = av.open(url, format=fmt, options=options, timeout=timeout)
        except av.error.ProtocolNotFoundError as error:
            scheme = url.split("://", 1)[0]
            raise SourceError(
                f"this FFmpeg build cannot read {scheme}:// streams ({error.strerror})"
            ) from error
        except (av.error.FFmpegError, OSError) as error:
            raise SourceError(f"cannot open {self.url}: {_reason(error)}") from error
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.url} has no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        return container

    # -- reading ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def frames(self, layouts: frozenset[Layout] = RGB) -> Iterator[Frame]:
        """The decoded pictures alone (tests, benchmarks, tools that need no audio)."""
        return (item for item in self.read(layouts, passthrough=False)
                if isinstance(item, Frame))

    def read(self, layouts: frozenset[Layout], *, passthrough: bool = True
             ) -> Iterator[Frame | Passthrough]:
        """Decoded frames, in the preferred of ``layouts`` each can take, and (files, with
        ``passthrough``) audio/subtitle packets, in demux order, until the input ends or
        :meth:`stop`; live sources reconnect. The input is closed when this ends, however."""
        seq = 0
        try:
            while not self._stop.is_set():
                try:
                    for item in self._demux(passthrough):
                        if isinstance(item, Passthrough):
                            yield item
                            continue
                        yield from_video_frame(item, layouts=layouts, seq=seq,
                                               capture_time=time.monotonic(),
                                               stream_id=self.stream_id,
                                               to_sdr=self.tone_map)
                        seq += 1
                        if self._stop.is_set() or seq == self.max_frames:
                            self._stop.set()
                            break
                    if not self.live or self._stop.is_set():
                        self._check_complete(seq)
                        break
                    log.warning("%s ended; reconnecting", self.url)
                except (av.error.FFmpegError, OSError) as error:
                    if not self.live:
                        self._end_early(seq, error)
                        break
                    log.warning("%s failed (%s); reconnecting", self.url, _reason(error))
                self._reopen()
        finally:
            self.close()

    def copied_packets(self) -> Iterator[Passthrough]:
        """The packets of the streams a file output copies, in demux order, without decoding
        the video (a join of enhanced segments takes only these from the input)."""
        if self._container is None:
            raise SourceError("source is not open")
        streams = self._passthrough_streams()
        if not streams:
            return
        for packet in self._container.demux(streams):
            if packet.dts is not None:
                yield Passthrough(packet.stream.index, packet)

    def _end_early(self, seq: int, error: BaseException) -> None:
        """A file whose demuxer fails part-way: what was decoded stands, and the summary says
        so; failing before any frame is an error (nothing to write)."""
        if seq == 0:
            raise SourceError(f"{self.url} cannot be decoded: {_reason(error)}") from error
        self.ended_early = f"the input stopped decoding after {seq} frames ({_reason(error)})"
        log.warning("%s: %s", self.url, self.ended_early)

    def _check_complete(self, seq: int) -> None:
        """Compare what was decoded with what the container announced (files only): its frame
        count (MP4) or its duration (Matroska, MPEG-TS). Skipped corrupt packets explain a
        shortfall on their own and are reported as such."""
        if (self.live or self._container is None or self._stop.is_set() or self.corrupt_packets
                or self.window is not None):
            return
        video = self._container.streams.video[0]
        announced = video.frames
        duration_s = (self._container.duration or 0) / 1e6
        # Within 1% / 1 s: edit lists and open GOPs make container counts approximate.
        if announced and seq < announced * 0.99 - 1:
            self.ended_early = (f"the input ended after {seq} of the {announced} frames its "
                                "header announces (truncated?)")
        elif not announced and self._last_time_s is not None and duration_s > 0:
            start_s = (self._container.start_time or 0) / 1e6
            if self._last_time_s - start_s < duration_s * 0.99 - 1.0:
                self.ended_early = (f"the input ended at {self._last_time_s - start_s:.1f} s of "
                                    f"the {duration_s:.1f} s its header announces (truncated?)")
        if self.ended_early:
            log.warning("%s: %s", self.url, self.ended_early)

    def _demux(self, passthrough: bool) -> Iterator[av.VideoFrame | Passthrough]:
        container = self._container
        if container is None:
            raise SourceError("source is not open")
        video = container.streams.video[0]
        copied = self._passthrough_streams() if passthrough else []
        interlaced = self.deinterlace and is_interlaced(int(video.codec_context.field_order or 0))
        deinterlacer = Deinterlacer(video.time_base) if interlaced else None
        start, end = (self.window.start, self.window.end) if self.window else (None, None)
        if start is not None:
            container.seek(start, stream=video, backward=True, any_frame=False)
        landed = start is None  # the first frame after the seek is checked
        for packet in container.demux([video, *copied]):
            if self._stop.is_set():
                break
            if self.live:
                self._to_real_time(packet)
            if packet.stream.type == "video":
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as error:
                    # A corrupt packet costs its own frames, not the rest of the input (as the
                    # ffmpeg tool does): skipped, counted, logged once.
                    if not self.corrupt_packets:
                        log.warning("%s: skipping corrupt data (%s)", self.url, _reason(error))
                    self.corrupt_packets += 1
                    continue
                for frame in frames:
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    if not landed:
                        landed = True
                        if frame.pts is None or (start is not None and frame.pts > start):
                            raise SourceError(f"cannot seek precisely in {self.url}: asked for "
                                              f"pts {start}, decoding began at {frame.pts}")
                    if start is not None and (frame.pts is None or frame.pts < start):
                        continue  # before the window (the keyframe's leading pictures)
                    if end is not None and frame.pts is not None and frame.pts >= end:
                        self._stop.set()  # the window is done (not an early end)
                        break
                    self._last_time_s = frame.time if frame.time is not None else None
                    yield from deinterlacer.push(frame) if deinterlacer else (frame,)
            elif packet.dts is not None:
                yield Passthrough(packet.stream.index, packet)
        if deinterlacer is not None:
            yield from deinterlacer.flush()

    def _to_real_time(self, packet: av.Packet[av.stream.Stream]) -> None:
        """Shift a live packet's timestamps onto the run's own clock: the first packet of the
        first connection is at 0, and the first one of each reconnection at the wall-clock
        time since then, so an outage stays a gap in a recording instead of vanishing (one
        offset per connection, the same for audio and video, so their sync is the source's)."""
        if packet.pts is None or packet.time_base is None:
            return
        now = time.monotonic()
        if self._clock_start is None:
            self._clock_start = now
        if self._offset_s is None:
            self._offset_s = (now - self._clock_start) - float(packet.pts * packet.time_base)
        shift = round(self._offset_s / packet.time_base)
        packet.pts += shift
        if packet.dts is not None:
            packet.dts += shift

    def _reopen(self) -> None:
        self.close()
        self._offset_s = None  # the next connection's timestamps start afresh
        delay, attempts = self.reconnect.backoff_initial_s, 0
        while not self._stop.is_set():
            if self._stop.wait(delay):
                break
            try:
                self._container = self._open_container()
            except SourceError as error:
                attempts += 1
                limit = self.reconnect.max_attempts
                log.warning("reconnect %d to %s failed: %s", attempts, self.url, error)
                if limit is not None and attempts >= limit:
                    raise SourceEndedError(
                        f"{self.url} stayed unreachable after {attempts} reconnect attempts"
                    ) from error
                delay = min(delay * 2, self.reconnect.backoff_max_s)
                continue
            self.reconnects += 1
            log.warning("reconnected to %s", self.url)
            return

    @property
    def connected(self) -> bool:
        """The input is open (a live source between reconnect attempts is not)."""
        return self._container is not None

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def _frame_rate(video: av.VideoStream) -> Fraction | None:
    """The average frame rate, unless it is only the time base's inverse where FFmpeg knows
    the codec's rate (a DV file: 60000 for 25 fps; written, it made x264 and the MOV timecode
    track refuse 60000 fps and the file came out with no video)."""
    rate = video.average_rate or video.guessed_rate
    guessed = video.guessed_rate
    if rate and guessed and video.time_base and rate == 1 / video.time_base != guessed:
        return Fraction(guessed)
    return Fraction(rate) if rate else None


def _rebuilt(stream: av.stream.Stream) -> bool:
    """A MOV/MP4 timecode track (data without a codec, tagged with its timecode) or chapter
    text track (which FFmpeg's demuxer discards: the container's chapters are read from it):
    muxers write these again from the timecode tag and the chapters, and a copied one makes
    no sense to them (a copied tmcd track had left a MOV without a single video packet)."""
    if stream.type != "data":
        return False
    chapter_track = int(stream.discard) == _DISCARD_ALL
    timecode = stream.codec_context is None and getattr(stream, "name", None) is None and any(
        k.lower() == "timecode" for k in stream.metadata)
    return chapter_track or timecode


_DISCARD_ALL = 48  # FFmpeg's AVDISCARD_ALL


def _reason(error: BaseException) -> str:
    if isinstance(error, av.error.FFmpegError):
        return error.strerror or type(error).__name__
    return str(error)
