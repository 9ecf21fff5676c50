"""The web preview's picture: the latest input | enhanced pair of a stream as one JPEG, made at
a reduced size and rate so that watching never slows the pipeline (the sink drops its oldest
frame when behind, and frames between two previews cost a clock read)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from streamer.frames import ANY, Passthrough, StreamInfo
from streamer.media.convert import rgb_image
from streamer.publish.wire import to_uint8
from streamer.queues import Policy
from streamer.sinks.base import Output

__all__ = ["PreviewSink", "Snapshot"]

_WIDTH = 480  # of each half
_QUALITY = 75


@dataclass(frozen=True)
class Snapshot:
    """One preview: a JPEG of the input (left half) and the enhanced frame (right half)."""

    jpeg: bytes
    seq: int
    width: int  # of each half
    height: int


class PreviewSink:
    """Keeps the latest :class:`Snapshot`, at most ``fps`` a second; ``latest`` is safe to read
    from any thread (the HTTP server's)."""

    name = "preview"
    accepts = ANY
    policy = Policy.DROP_OLDEST
    wants_packets = False
    unsent = 0

    def __init__(self, fps: float = 5.0) -> None:
        self.interval_s = 1.0 / fps
        self.made = 0
        self._next = 0.0
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None

    @property
    def latest(self) -> Snapshot | None:
        with self._lock:
            return self._latest

    def open(self, info: StreamInfo) -> None:
        """Nothing to open: snapshots live in memory."""

    def write(self, output: Output) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        halves = [_small(rgb_image(frame)) for frame in (output.original, output.enhanced)]
        height = min(h.shape[0] for h in halves)
        joined = np.concatenate([h[:height] for h in halves], axis=1)
        ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(joined[..., ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, _QUALITY])
        if not ok:
            return
        snapshot = Snapshot(encoded.tobytes(), output.enhanced.seq, joined.shape[1] // 2, height)
        with self._lock:
            self._latest = snapshot
        self.made += 1

    def write_packet(self, packet: Passthrough) -> None:
        """No packets."""

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, error: BaseException | None = None) -> None:
        """The last snapshot stays readable."""


def _small(image: np.ndarray) -> np.ndarray:
    image = to_uint8(image)
    if image.shape[1] <= _WIDTH:
        return image
    height = max(2, round(image.shape[0] * _WIDTH / image.shape[1]))
    return cv2.resize(image, (_WIDTH, height), interpolation=cv2.INTER_AREA)
