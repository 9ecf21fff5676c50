"""Run statistics: counts, per-stage throughput, latency percentiles and flicker."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

__all__ = ["FlickerMeter", "RunStats", "StageTimer"]

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


class FlickerMeter:
    """Mean absolute change between consecutive output frames where the input did not change.

    Pixels whose grey level moved by less than 2/255 in the input are "static"; any change of
    the output there is flicker the enhancer added. Reported in 8-bit grey levels, for the
    output and, as a reference, for the input over the same pixels. Frames are compared at
    320 px wide (fast and insensitive to codec noise).
    """

    def __init__(self) -> None:
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self.output_sum = 0.0
        self.input_sum = 0.0
        self.frames = 0

    def update(self, original: np.ndarray, enhanced: np.ndarray) -> None:
        current = (_grey_thumbnail(original), _grey_thumbnail(enhanced))
        previous, self._previous = self._previous, current
        if previous is None or previous[0].shape != current[0].shape:
            return
        static = np.abs(current[0] - previous[0]) < _STATIC_THRESHOLD
        if not static.any():
            return
        self.output_sum += float(np.abs(current[1] - previous[1])[static].mean())
        self.input_sum += float(np.abs(current[0] - previous[0])[static].mean())
        self.frames += 1

    @property
    def output(self) -> float | None:
        return 255.0 * self.output_sum / self.frames if self.frames else None

    @property
    def input(self) -> float | None:
        return 255.0 * self.input_sum / self.frames if self.frames else None


def _grey_thumbnail(image: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] at 320 px wide, of RGB or, for I420 planes, of the Y plane's codes
    (limited-range luma reads up to 14% flatter; only the input reference shifts)."""
    if image.ndim == 2:
        image = image[: image.shape[0] * 2 // 3]
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    height = max(1, round(image.shape[0] * _FLICKER_WIDTH / image.shape[1]))
    small = cv2.resize(image, (_FLICKER_WIDTH, height), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = small.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return small.astype(np.float32) / scale


@dataclass
class RunStats:
    """Everything the end summary reports; updated by the stage threads."""

    frames_in: int = 0
    frames_out: int = 0
    dropped_queue: int = 0
    dropped_stale: int = 0
    unsent: int = 0  # push mode: frames a consumer that went away never took
    corrupt_packets: int = 0  # video packets the decoder refused, skipped
    reconnects: int = 0
    scene_cuts: int = 0
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    stages: dict[str, StageTimer] = field(
        default_factory=lambda: {name: StageTimer() for name in ("decode", "infer", "output")}
    )
    latencies_s: list[float] = field(default_factory=list)
    flicker: FlickerMeter = field(default_factory=FlickerMeter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dropped(self) -> int:
        return self.dropped_queue + self.dropped_stale

    def latency_ms(self, percentile: float) -> float | None:
        if not self.latencies_s:
            return None
        return float(np.percentile(self.latencies_s, percentile) * 1000)

    def as_dict(self) -> dict[str, Any]:
        elapsed = (self.finished or time.monotonic()) - self.started
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": {"queue": self.dropped_queue, "stale": self.dropped_stale},
            "unsent": self.unsent,
            "corrupt_packets": self.corrupt_packets,
            "reconnects": self.reconnects,
            "scene_cuts": self.scene_cuts,
            "interrupted": self.interrupted,
            "elapsed_s": round(elapsed, 3),
            "fps": round(self.frames_out / elapsed, 2) if elapsed > 0 else 0.0,
            "stage_fps": {name: round(t.fps, 2) for name, t in self.stages.items()},
            "latency_ms": {f"p{p}": _round(self.latency_ms(p)) for p in (50, 95, 99)},
            "flicker": {"output": _round(self.flicker.output), "input": _round(self.flicker.input),
                        "frames": self.flicker.frames},
        }

    def summary(self) -> str:
        d = self.as_dict()
        lat, flick, drops = d["latency_ms"], d["flicker"], d["dropped"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in d["stage_fps"].items())
        lines = [
            f"frames: {d['frames_in']} in, {d['frames_out']} out, dropped {drops['queue']} "
            f"(queue full) + {drops['stale']} (too late)"
            + (" [interrupted]" if d["interrupted"] else ""),
            f"speed: {d['fps']:.2f} fps overall in {d['elapsed_s']:.1f} s; per stage: {stages}",
            f"latency: p50 {_fmt(lat['p50'])} ms, p95 {_fmt(lat['p95'])} ms, "
            f"p99 {_fmt(lat['p99'])} ms",
            f"flicker (static regions, 8-bit grey levels): output {_fmt(flick['output'])}, "
            f"input {_fmt(flick['input'])}",
        ]
        if d["corrupt_packets"]:
            lines.append(f"corrupt input: {d['corrupt_packets']} video packets skipped")
        if d["unsent"]:
            lines.append(f"not published: {d['unsent']} frames (the push consumer went away)")
        if d["reconnects"] or d["scene_cuts"]:
            lines.append(f"reconnects: {d['reconnects']}, scene cuts: {d['scene_cuts']}")
        return "\n".join(lines)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
