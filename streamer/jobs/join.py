"""Joining enhanced segments into the output by stream copy, with the input's other streams
(audio, subtitles, data), chapters, attachments and metadata remuxed once over the whole file.

The segments were encoded apart with the same settings, so their codec parameters agree (that
is checked: a join of differing streams would not play). Packets keep their pts; where one
segment's first decode timestamps (B-frame delay) would fall at or before the previous
segment's last, they are moved just past it (never past their own pts), as a muxer requires.
Video and the input's packets are merged by time, so the muxer's interleaving buffer stays
small however long the file.
"""

from __future__ import annotations

import heapq
import typing
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.stream

from streamer.errors import OutputIncompleteError, SinkError
from streamer.frames import Passthrough, StreamInfo
from streamer.sinks.check import check_written
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileTarget
from streamer.sinks.muxer import Muxer
from streamer.sources.video import VideoSource

__all__ = ["join_segments"]


def _seconds(packet: av.Packet[Any]) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return float((stamp or 0) * (packet.time_base or Fraction(1, 90_000)))


class _SegmentJoin:
    """The output file's muxer, its video copied from the segments' packets: no encoder."""

    def __init__(self, path: Path, settings: EncodeSettings, template: av.VideoStream) -> None:
        self.muxer = Muxer(FileTarget(path), settings)
        self._template = template
        self._video: av.VideoStream | None = None
        self._last_dts: int | None = None
        self.packets = 0

    def open(self, info: StreamInfo) -> None:
        """The container with the segments' video stream first, then the input's other
        streams, chapters and attachments."""
        container = self.muxer.open(info)
        video = container.add_stream_from_template(self._template, opaque=True)
        assert isinstance(video, av.VideoStream)
        video.metadata.update(info.video_metadata)  # the timecode with them
        if info.rate:  # the segments' H.264 reads back at its time base's rate (15360 fps),
            video.codec_context.framerate = info.rate  # a rate no tmcd track can count in
        self._video = video
        self.muxer.copy_streams(info)

    def start(self) -> None:
        assert self._video is not None
        self._video.time_base = self._template.time_base
        self.muxer.start(refuse_unused=False)  # the segments' encode took the options

    def write_packet(self, packet: Passthrough) -> None:
        self.muxer.write_packet(packet)

    def write_video_packet(self, packet: av.Packet[av.VideoStream]) -> None:
        assert self._video is not None
        time_base = packet.time_base or self._template.time_base or Fraction(1, 90_000)
        packet.stream = self._video
        packet.time_base = time_base
        if packet.dts is not None and self._last_dts is not None and packet.dts <= self._last_dts:
            packet.dts = self._last_dts + 1  # the next segment's B-frame delay
            if packet.pts is not None and packet.dts > packet.pts:
                raise SinkError(f"cannot join the segments of {self.muxer.target.label}: "
                                f"decode order overlaps at pts {packet.pts} (time base "
                                f"{time_base} too coarse)")
        self._last_dts = packet.dts
        self.muxer.mux([typing.cast("av.Packet[av.stream.Stream]", packet)])
        self.packets += 1

    def close(self, error: BaseException | None = None) -> None:
        self.muxer.close(error)


def _segment_packets(files: Sequence[tuple[Path, int]]
                     ) -> Iterator[av.Packet[av.VideoStream]]:
    """Every video packet of the segments in order (decode order within each), moved back by
    each segment's offset; each segment must open with a keyframe and share the first one's
    codec parameters."""
    parameters: bytes | None = None
    for path, offset in files:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            extradata = bytes(video.codec_context.extradata or b"")
            if parameters is not None and extradata != parameters:
                raise SinkError(f"{path.name} was encoded with other codec parameters than the "
                                "first segment (was the encoder changed between runs?)")
            parameters = extradata
            opened = False
            for packet in container.demux(video):
                if not packet.size:
                    continue
                if not opened and not packet.is_keyframe:
                    raise SinkError(f"{path.name} does not start with a keyframe")
                opened = True
                packet.pts = None if packet.pts is None else packet.pts + offset
                packet.dts = None if packet.dts is None else packet.dts + offset
                yield packet


def join_segments(source: VideoSource, files: Sequence[tuple[Path, int]], output: Path,
                  settings: EncodeSettings) -> int:
    """Write ``output`` from the segment ``files`` (in order, each with the pts offset it was
    written with) and the other streams of ``source`` (the input, not yet open, decoded as
    the segments were: its StreamInfo describes them); returns the video packets written. A
    failed join leaves no output."""
    try:
        with av.open(str(files[0][0])) as first:
            join = _SegmentJoin(output, settings, first.streams.video[0])
            try:
                join.open(source.open())
                join.start()
                video = ((_seconds(p), 0, n, p) for n, p in enumerate(_segment_packets(files)))
                others = ((_seconds(item.packet), 1, n, item)
                          for n, item in enumerate(source.copied_packets()))
                for _, _, _, item in heapq.merge(video, others):
                    if isinstance(item, Passthrough):
                        join.write_packet(item)
                    elif isinstance(item, av.Packet):
                        join.write_video_packet(item)
            except BaseException as error:
                join.close(error)
                output.unlink(missing_ok=True)
                raise
            join.close()
            try:
                check_written(output, join.packets, join.muxer.format_name)
            except OutputIncompleteError:
                output.unlink(missing_ok=True)
                raise
            return join.packets
    finally:
        source.close()
