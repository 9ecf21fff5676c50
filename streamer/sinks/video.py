"""A video output is an :class:`~streamer.sinks.encoder.Encoder` plus a
:class:`~streamer.sinks.muxer.Muxer` of a target (a file, a URL, an HLS playlist), and for a
job's segment a :class:`Cut` (segment.py's ``SegmentCut``). ``close`` flushes the encoder and
writes the trailer; an output that got no frame leaves nothing behind (a file is removed)."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from streamer.errors import OutputIncompleteError
from streamer.frames import Frame, Layout, Passthrough, StreamInfo
from streamer.queues import Policy
from streamer.sinks.base import Output
from streamer.sinks.check import check_written
from streamer.sinks.encoder import Encoder, EncodeSettings
from streamer.sinks.muxer import Muxer, Packets, Target

__all__ = ["Cut", "VideoOutput"]


class Cut(Protocol):
    """What a video output needs of a segment's cut (segment.py): the encoder options that
    close GOPs exactly, which frames must start one, the pts offset, the packets kept."""

    @property
    def offset(self) -> int: ...

    def encoder_options(self, options: dict[str, str], codec: str) -> dict[str, str]: ...

    def keyframe(self, frame: Frame) -> bool: ...

    def kept(self, packets: Packets) -> Packets: ...


class VideoOutput:
    """Encodes frames in arrival order into ``target``'s container (a
    :class:`~streamer.sinks.base.Sink`). ``cut``: only a segment's frames are written (video
    only: the join copies the input's other streams)."""

    unsent = 0

    def __init__(self, target: Target, settings: EncodeSettings = EncodeSettings(), *,
                 policy: Policy = Policy.BLOCK, wants_packets: bool = True,
                 cut: Cut | None = None) -> None:
        self.target = target
        self.settings = settings
        self.name = target.name
        self.policy = policy
        self.wants_packets = wants_packets and cut is None
        self.cut = cut
        self.encoder = Encoder(settings, target.label)
        self.muxer = Muxer(target, settings)
        self.accepts: frozenset[Layout] = self.encoder.accepts
        self.frames_written = 0
        self.video_packets = 0  # muxed into the current container
        self._opened = False  # a container was made (and may be discarded)

    @property
    def codec(self) -> str:
        return self.encoder.codec

    @property
    def pix_fmt(self) -> str:
        return self.encoder.pix_fmt

    def describe(self, info: StreamInfo) -> None:
        """Choose the codec and pixel format for the stream (ConfigError when the settings
        cannot), without opening anything."""
        self.target.prepare()
        self.encoder.describe(info, self.target.named_for)

    def connect(self, info: StreamInfo | None = None) -> None:
        """Open the container: with ``info``, the input's tags, streams and extras, and the
        video stream when the size is known; without, bare (a network output connecting)."""
        self.encoder.reset()
        self.video_packets = 0
        self.muxer.open(info)
        self._opened = True
        if info is None:
            return
        if info.width and info.height:  # the video stream first, as in the input
            self._add_video(info.width, info.height)
        self.muxer.copy_streams(info)

    def open(self, info: StreamInfo) -> None:
        if self.cut is not None:
            info = dataclasses.replace(info, passthrough=(), chapters=(), attachments=(),
                                       metadata={})
        self.describe(info)
        self.connect(info)

    def _add_video(self, width: int, height: int) -> None:
        assert self.muxer.container is not None
        options = self.target.encoder_options(self.encoder.options(), self.encoder.codec,
                                              self.encoder.frame_rate, self.settings)
        if self.cut is not None:
            options = self.cut.encoder_options(options, self.encoder.codec)
        self.encoder.add_stream(self.muxer.container, width, height, options)

    def write(self, output: Output) -> None:
        self.write_frame(output.enhanced)

    def write_frame(self, frame: Frame) -> None:
        """Encode one frame (RGB or, with pix_fmt yuv420p, I420); the header is written with
        the first."""
        if not self.muxer.started:
            if self.encoder.stream is None:
                self._add_video(frame.width, frame.height)
            assert self.muxer.container is not None
            self.encoder.start(frame, self.muxer.container.format.name)
            self.muxer.start()
        cut = self.cut
        packets = self.encoder.encode(frame, keyframe=cut is not None and cut.keyframe(frame),
                                      offset=cut.offset if cut is not None else 0)
        self.muxer.mux(self._kept(packets))
        self.frames_written += 1

    def _kept(self, packets: Packets) -> Packets:
        kept = packets if self.cut is None else self.cut.kept(packets)
        self.video_packets += len(kept)
        return kept

    def write_packet(self, packet: Passthrough) -> None:
        """Copy one audio or subtitle packet of the input stream it came from."""
        self.muxer.write_packet(packet)

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        """Flush the encoder and write the trailer (safe to call twice); see
        :meth:`Muxer.close`. An output that got no frame is discarded; a file is read back
        (check.py): one missing video packets or its trailer is an OutputIncompleteError."""
        encoder = self.encoder
        try:
            if self.muxer.container is not None:
                last = None if encoder.stream is None else lambda: self._kept(encoder.flush())
                self.muxer.close(error, last)
                encoder.report()
                self._check(error)
        finally:
            if self._opened and self.frames_written == 0:
                self.target.discard()

    def closed_state(self) -> str:
        """What the closed output holds, in words (a run stopped at once says it)."""
        label, file = self.target.label, self.target.written is not None
        if self.frames_written == 0:
            return f"{label}: no frame was written" + (", so no file is left" if file else "")
        if not self.muxer.finished:
            return f"{label}: {self.frames_written} frames written, but it could not be finished"
        if not file:
            return f"{label}: {self.frames_written} frames sent, then the stream was ended"
        return f"{label} is closed with its trailer and the {self.frames_written} frames written"

    def _check(self, error: BaseException | None) -> None:
        """Read the closed file back (not after a failure: that error is the one to give)."""
        path = self.target.written
        if error is not None or path is None or self.frames_written == 0:
            return
        if self.cut is None and self.video_packets != self.frames_written:
            raise OutputIncompleteError(f"{path}: {self.frames_written} frames were encoded "
                                        f"but {self.video_packets} video packets written")
        check_written(path, self.video_packets, self.muxer.format_name)
