"""Run statistics: counts, per-stage throughput, latency percentiles and flicker.

Everything here is bounded: latency lives in a fixed set of log-spaced buckets (5% apart, so a
percentile is read to within 5%), not in a list that grows by a float per frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from hdm.dcp import LUMA_WEIGHTS
from streamer.engine.motion import estimate_motion
from streamer.frames import Frame, Layout, full_scale

__all__ = ["FlickerMeter", "LatencyHistogram", "RunStats", "StageTimer"]

_STATIC_THRESHOLD = 2.0 / 255.0
_FLICKER_WIDTH = 320


class StageTimer:
    """Busy time and item count of one stage (its own thread), for items per busy second."""

    def __init__(self) -> None:
        self.busy_s = 0.0
        self.items = 0

    def add(self, seconds: float, items: int) -> None:
        self.busy_s += seconds
        self.items += items

    @property
    def fps(self) -> float:
        return self.items / self.busy_s if self.busy_s > 0 else 0.0


class LatencyHistogram:
    """Counts of latencies in log-spaced buckets from 0.1 ms to 100 s (5% wide)."""

    _RATIO = 1.05
    _LOW_S = 1e-4
    _BUCKETS = int(np.ceil(np.log(1e6) / np.log(_RATIO))) + 1

    def __init__(self) -> None:
        self.counts = np.zeros(self._BUCKETS, np.int64)

    def add(self, seconds: float) -> None:
        index = int(np.log(max(seconds, self._LOW_S) / self._LOW_S) / np.log(self._RATIO)) + 1
        self.counts[min(index, self._BUCKETS - 1)] += 1

    def merge(self, other: LatencyHistogram) -> None:
        self.counts += other.counts

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def count_below(self, seconds: float) -> int:
        """Latencies at or below ``seconds`` (to within the 5% width of a bucket)."""
        return int(self.counts[_UPPER_EDGES <= seconds * (1 + 1e-9)].sum())

    def approximate_sum(self) -> float:
        """The sum of all latencies, each counted at its bucket's upper edge."""
        return float((self.counts * _UPPER_EDGES).sum())

    def percentile(self, percent: float) -> float | None:
        """The upper edge, in seconds, of the bucket holding the ``percent``-th percentile."""
        total = self.total
        if not total:
            return None
        index = int(np.searchsorted(np.cumsum(self.counts), total * percent / 100))
        return float(_UPPER_EDGES[min(index, self._BUCKETS - 1)])


_UPPER_EDGES = LatencyHistogram._LOW_S * LatencyHistogram._RATIO ** np.arange(
    LatencyHistogram._BUCKETS, dtype=np.float64)  # seconds, bucket by bucket


class FlickerMeter:
    """Mean absolute change between consecutive output frames where the input did not change, once
    the camera's motion is taken out.

    The previous frame (input and output) is first brought forward by the camera's motion between
    the two inputs (streamer.engine.motion, estimated on these thumbnails); pixels whose grey level
    then moved by less than 2/255 in the input are "static", and any change of the output there is
    flicker the enhancer added. Without the motion a slow pan counts faint texture sliding by (which
    dehazing amplifies) as flicker, and scores an output that trails behind the camera as steadier
    than one that follows it (the fog clip: 0.59 against 1.13 levels, where compensated they are
    1.09 against 0.94). Pixels the camera brought into view are not compared; the cubic warp smooths
    the previous frame's noise a little on part-pixel motion (about 7% less noise at half a pixel),
    so compare clips of like motion. Reported in 8-bit grey levels, for the output and, as a
    reference, for the input over the same pixels. Frames are compared at 320 px wide (fast and
    insensitive to codec noise).
    """

    def __init__(self) -> None:
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self.output_sum = 0.0
        self.input_sum = 0.0
        self.frames = 0

    def update(self, original: np.ndarray, enhanced: np.ndarray) -> None:
        """Add a pair of RGB frames (H×W×3, uint8 or uint16)."""
        self._add(_grey_thumbnail(original, Layout.rgb_for(original.dtype)),
                  _grey_thumbnail(enhanced, Layout.rgb_for(enhanced.dtype)))

    def update_frames(self, original: Frame, enhanced: Frame) -> None:
        """Add a pair of frames in any layout."""
        self._add(_grey_thumbnail(original.image, original.layout),
                  _grey_thumbnail(enhanced.image, enhanced.layout))

    def _add(self, original: np.ndarray, enhanced: np.ndarray) -> None:
        previous, self._previous = self._previous, (original, enhanced)
        if previous is None or previous[0].shape != original.shape:
            return
        before, before_out, seen = _followed(previous[0], previous[1], original)
        static = seen & (np.abs(original - before) < _STATIC_THRESHOLD)
        if not static.any():
            return
        self.output_sum += float(np.abs(enhanced - before_out)[static].mean())
        self.input_sum += float(np.abs(original - before)[static].mean())
        self.frames += 1

    @property
    def output(self) -> float | None:
        return 255.0 * self.output_sum / self.frames if self.frames else None

    @property
    def input(self) -> float | None:
        return 255.0 * self.input_sum / self.frames if self.frames else None


def _followed(before: np.ndarray, before_out: np.ndarray, now: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The previous input and output thumbnails brought forward by the camera's motion to
    ``now``, and where they have something to compare (all of the frame for a still camera)."""
    motion = estimate_motion(_codes(before), _codes(now))
    if motion is None:
        return before, before_out, np.ones(now.shape, bool)
    size = now.shape[::-1]

    def warp(image: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        return cv2.warpAffine(image, motion.matrix, size, flags=cv2.INTER_CUBIC,
                              borderMode=border)

    seen = warp(np.ones_like(now), cv2.BORDER_CONSTANT) > 0.999
    inside = cv2.erode(seen.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return warp(before), warp(before_out), inside


def _codes(grey: np.ndarray) -> np.ndarray:
    return np.clip(grey * 255 + 0.5, 0, 255).astype(np.uint8)


def _grey_thumbnail(image: np.ndarray, layout: Layout) -> np.ndarray:
    """Grey levels in [0, 1] at 320 px wide, of RGB or, for I420 planes, of the Y plane's codes
    (limited-range luma reads up to 14% flatter; only the input reference shifts)."""
    if layout is Layout.I420:
        image = image[: layout.size(image)[0]]
    height = max(1, round(image.shape[0] * _FLICKER_WIDTH / image.shape[1]))
    small = cv2.resize(image, (_FLICKER_WIDTH, height), interpolation=cv2.INTER_AREA)
    if layout.is_rgb:
        small = small.astype(np.float32) @ np.array(LUMA_WEIGHTS, np.float32)
    return small.astype(np.float32) / full_scale(layout)


@dataclass
class RunStats:
    """Everything one stream's end summary reports. Each field has one writer: the decode
    thread (frames_in, decode), the engine worker (frames_out, dropped_stale, infer), each sink's
    worker (its timer and latency, read here at the end), the flicker sink (flicker)."""

    frames_in: int = 0
    frames_out: int = 0
    dropped_queue: int = 0  # live sources: frames the input queue discarded (engine too slow)
    dropped_stale: int = 0  # live sources: frames older than the latency bound at inference
    dropped_sinks: dict[str, int] = field(default_factory=dict)  # per output, by its queue
    unsent: int = 0  # push mode: frames a consumer that went away never took
    corrupt_packets: int = 0  # video packets the decoder refused, skipped
    ended_early: str | None = None  # a file that ended before its header said it would
    output_incomplete: str | None = None  # a file output read back lacked packets/its trailer
    reconnects: int = 0
    scene_cuts: int = 0
    tasks: dict[str, int] = field(default_factory=dict)  # task auto: frames each task took
    task_switches: int = 0
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    stages: dict[str, StageTimer] = field(
        default_factory=lambda: {name: StageTimer() for name in ("decode", "infer")}
    )
    latency: dict[str, LatencyHistogram] = field(default_factory=dict)  # per output
    flicker: FlickerMeter = field(default_factory=FlickerMeter)

    @property
    def dropped(self) -> int:
        return self.dropped_queue + self.dropped_stale + sum(self.dropped_sinks.values())

    def latency_ms(self, percentile: float) -> float | None:
        """Decode to written, over every output."""
        merged = LatencyHistogram()
        for histogram in self.latency.values():
            merged.merge(histogram)
        value = merged.percentile(percentile)
        return None if value is None else value * 1000

    def as_dict(self) -> dict[str, Any]:
        elapsed = (self.finished or time.monotonic()) - self.started
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": {"queue": self.dropped_queue, "stale": self.dropped_stale,
                        **{f"output:{name}": n for name, n in self.dropped_sinks.items()}},
            "unsent": self.unsent,
            "corrupt_packets": self.corrupt_packets,
            "ended_early": self.ended_early,
            "output_incomplete": self.output_incomplete,
            "reconnects": self.reconnects,
            "scene_cuts": self.scene_cuts,
            "tasks": dict(self.tasks),
            "task_switches": self.task_switches,
            "interrupted": self.interrupted,
            "elapsed_s": round(elapsed, 3),
            "fps": round(self.frames_out / elapsed, 2) if elapsed > 0 else 0.0,
            "stage_fps": {name: round(t.fps, 2) for name, t in self.stages.items()},
            "latency_ms": {f"p{p}": _round(self.latency_ms(p)) for p in (50, 95, 99)},
            "flicker": {"output": _round(self.flicker.output), "input": _round(self.flicker.input),
                        "frames": self.flicker.frames},
        }

    def job_summary(self) -> str:
        """A segmented job's end line (its segments were enhanced elsewhere: no latency)."""
        d = self.as_dict()
        return (f"frames: {d['frames_out']} written in {d['elapsed_s']:.1f} s "
                f"({d['fps']:.2f} fps overall)")

    def summary(self) -> str:
        d = self.as_dict()
        lat, flick = d["latency_ms"], d["flicker"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in d["stage_fps"].items())
        outputs = "".join(f" + {n} ({name.removeprefix('output:')} output behind)"
                          for name, n in d["dropped"].items() if name.startswith("output:") and n)
        lines = [
            f"frames: {d['frames_in']} in, {d['frames_out']} out, dropped "
            f"{self.dropped_queue} (queue full) + {self.dropped_stale} (too late){outputs}"
            + (" [interrupted]" if d["interrupted"] else ""),
            f"speed: {d['fps']:.2f} fps overall in {d['elapsed_s']:.1f} s; per stage: {stages}",
            f"latency (decoded to written): p50 {_fmt(lat['p50'])} ms, p95 {_fmt(lat['p95'])} "
            f"ms, p99 {_fmt(lat['p99'])} ms",
            f"flicker (static regions, 8-bit grey levels): output {_fmt(flick['output'])}, "
            f"input {_fmt(flick['input'])}",
        ]
        if d["ended_early"]:
            lines.append(f"input ended early: {d['ended_early']}")
        if d["output_incomplete"]:
            lines.append(f"output incomplete: {d['output_incomplete']}")
        if d["corrupt_packets"]:
            lines.append(f"corrupt input: {d['corrupt_packets']} video packets skipped")
        if d["unsent"]:
            lines.append(f"not published: {d['unsent']} frames (the push consumer went away)")
        if d["reconnects"] or d["scene_cuts"]:
            lines.append(f"reconnects: {d['reconnects']}, scene cuts: {d['scene_cuts']}")
        if d["tasks"]:
            counts = ", ".join(f"{task} {n}" for task, n in d["tasks"].items())
            lines.append(f"task auto: frames by task: {counts}; {d['task_switches']} switches")
        return "\n".join(lines)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
