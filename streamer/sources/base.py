"""What the pipeline needs of a source of video (files, URLs, cameras, test graphs, segments)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from streamer.frames import Frame, Layout, Passthrough, StreamInfo

__all__ = ["Source"]


class Source(Protocol):
    """A stream of decoded frames, with its passthrough packets in demux order.

    ``read`` yields pictures and packets from one iterator because one demuxer produces both,
    interleaved; two iterators would need a buffer between them and could deadlock a consumer
    that reads one of them only. ``stop`` may be called from any thread; ``read`` then ends
    after at most the packet being decoded.
    """

    stream_id: str
    live: bool
    reconnects: int  # live sources: times the stream was reopened
    corrupt_packets: int  # video packets the decoder refused and that were skipped
    ended_early: str | None  # why a file ended before its announced end (None: it did not)

    @property
    def connected(self) -> bool:
        """The input is open now (a live source between reconnect attempts is not)."""

    def open(self) -> StreamInfo: ...

    def read(self, layouts: frozenset[Layout]) -> Iterator[Frame | Passthrough]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...
