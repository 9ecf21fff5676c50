"""The size the network runs at.

At full resolution HDM-S takes seconds per 720p frame on a laptop CPU. Run on a small copy of
the frame, with its effect carried back to full resolution by a local affine fit
(:mod:`hdm.upsample`, :mod:`streamer.engine.reduce`), it takes tens of milliseconds and keeps
the full frame's own detail.

``inference_size`` (the YAML ``model.inference_size``, ``--inference-size``):

* ``full``: the network sees every pixel (bit for bit what it did before this mode existed);
* ``N``: the network sees the frame scaled so that its shorter side is N pixels (never larger
  than the frame);
* ``auto``: the largest of :data:`CANDIDATES` (or full) whose measured cost fits the stream's
  frame budget on this device, chosen once per frame size at warm-up and logged; derain not
  below :data:`SMALLEST_SHARE` of the frame but on a live stream, where it would harm. The
  choice is kept on disk (:class:`ChoiceCache`) per machine, engine, weights, frame size, rate,
  batch and floor, so that the same command gives the same frames every run, and every worker
  of a segmented job the same size; delete the file to measure again.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from hdm.upsample import reduced_size

__all__ = ["CANDIDATES", "DEFAULT_RATE", "ENGINE_SHARE", "SMALLEST_SHARE", "Choice",
           "ChoiceCache", "choose_size", "machine_name", "timer"]

log = logging.getLogger(__name__)

CANDIDATES = (1080, 810, 720, 540, 432, 360, 288, 240, 216, 180, 144, 128, 112, 96)
"""Shorter sides ``auto`` chooses from, largest first; below 96 pixels the networks lose the
structure they need (dehaze on O-HAZE fell by a further dB from 1/8 to 1/16)."""
DEFAULT_RATE = 25.0
"""Frames per second assumed when a stream does not say (stills, a source without a rate)."""
SMALLEST_SHARE = {"derain": 0.75}
"""The least part of the frame's shorter side a task's network may see under ``auto``, budget
or not. Rain streaks are a pixel or two wide, and the fit back to full resolution keeps the
input's own, so a small copy cannot show the network what to remove. On the paired rainy sets
through the engine (benchmarks/bench_inference_size.py, 8 December), HDM-S at the size this
floor picks (288 for the 320-pixel photos, 360 for the 480-pixel video frames) came within
0.11 dB of its full-resolution PSNR on every set and above the input on all; at 0.6 the OTMSCSC
frames fell below their input (28.40 against 28.47 dB), at 96 pixels to 25.81. The classical
derain gains with size too (OTMSCSC 19.23 dB at 96, 21.92 at 288). Live streams are not held
to it (Runner.short_side). Haze and darkness are smooth and have no floor."""
ENGINE_SHARE = {"cpu": 0.5, "cuda": 0.8}
"""Part of a frame's interval the network may take. On a CPU decode, colour conversion and the
encoder share the cores with it (the x264 transcode of 720p alone took 13 ms a frame of the
40 ms at 25 fps on 2 cores); on a GPU the host work overlaps the device's."""


@dataclass(frozen=True)
class Choice:
    """What ``auto`` chose for one frame size, and why (for the log and the start line)."""

    short_side: int | None  # None: full resolution
    cost_ms: float | None  # None: not timed (no candidate is smaller than the frame)
    budget_ms: float

    def describe(self, height: int, width: int) -> str:
        if self.cost_ms is None:
            return f"inference at full resolution ({width}x{height}: no smaller size to choose)"
        if self.short_side is None:
            size = f"full resolution ({width}x{height})"
        else:
            h, w = reduced_size(height, width, self.short_side)
            size = f"{w}x{h} for {width}x{height}"
        verdict = "fits" if self.cost_ms <= self.budget_ms else "misses"
        return (f"inference at {size}: {self.cost_ms:.1f} ms a frame, {verdict} the "
                f"{self.budget_ms:.1f} ms budget")


def choose_size(
    cost: Callable[[int | None], float],
    height: int,
    width: int,
    *,
    device: str,
    rate: float | None,
    smallest_share: float = 0.0,
) -> Choice:
    """The largest candidate (or full resolution) whose cost fits the budget, and none below
    ``smallest_share`` of the shorter side (:data:`SMALLEST_SHARE`): there the smallest
    candidate at or above it, or full resolution, even where it misses the budget. Where the
    floor leaves one candidate, only it is timed, and full resolution predicted from it.

    ``cost(short_side)`` is the milliseconds a frame takes at that inference size (None: full;
    :func:`timer` makes one from a function that runs a batch). The smallest candidate and twice
    its size are measured, the cost per pixel the network sees fitted through them, and the
    largest size predicted to fit is measured to confirm (a step down while it does not). Full
    resolution is predicted, not measured, unless the frame is no larger than the sizes
    measured: a 4K frame on a CPU would take minutes.
    """
    budget = ENGINE_SHARE.get(device, ENGINE_SHARE["cpu"]) / (rate or DEFAULT_RATE) * 1e3
    short = min(height, width)
    sizes = [s for s in CANDIDATES if smallest_share * short <= s < short]
    if not sizes:
        return Choice(None, None, budget)
    low = sizes[-1]
    high = min(2 * low, short)
    if smallest_share and high == short:
        high = sizes[0]  # a floor near the frame's size: not the full frame, whose export
        # and timing take a minute at 1080p on a CPU
    low_cost = cost(low)
    if high == low:  # one candidate: its cost taken as all per pixel (full's overestimated)
        high_cost, per_pixel, fixed = low_cost, low_cost / _pixels(height, width, low), 0.0
    else:
        high_cost = cost(None if high == short else high)
        per_pixel = max(high_cost - low_cost, 0.0) / max(_pixels(height, width, high)
                                                           - _pixels(height, width, low), 1)
        fixed = low_cost - per_pixel * _pixels(height, width, low)
    if high == short:
        if high_cost <= budget:
            return Choice(None, high_cost, budget)
    elif per_pixel * height * width <= budget:  # predicted to fit: measured for the log line
        return Choice(None, cost(None), budget)
    for size in sizes:
        if size == low or fixed + per_pixel * _pixels(height, width, size) > budget:
            continue
        measured = high_cost if size == high else cost(size)
        if measured <= budget:
            return Choice(size, measured, budget)
    return Choice(low, low_cost, budget)


def _pixels(height: int, width: int, short_side: int) -> int:
    h, w = reduced_size(height, width, short_side)
    return h * w


def timer(run: Callable[[int | None], None], batch: int) -> Callable[[int | None], float]:
    """Milliseconds per frame of ``run(short_side)`` (which enhances ``batch`` frames): one
    untimed run (allocation, export, compilation), then the best of two (the least disturbed by
    other work on the machine)."""

    def cost(short_side: int | None) -> float:
        run(short_side)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            run(short_side)
            best = min(best, time.perf_counter() - start)
        return best * 1e3 / batch

    return cost


def machine_name(device: str) -> str:
    """What a measured cost depends on besides the engine: the processor and its threads, or
    the GPU."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    import torch

    return (f"{platform.processor() or platform.machine()} x{os.cpu_count()}, "
            f"{torch.get_num_threads()} threads")


class ChoiceCache:
    """``auto``'s choices, one JSON file: key -> :class:`Choice`. A file that cannot be read
    is treated as empty (and rewritten); a write that fails is logged, never fatal."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, key: str) -> Choice | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            return Choice(**entry)
        except TypeError:
            return None

    def put(self, key: str, choice: Choice) -> None:
        entries = self._read()
        entries[key] = asdict(choice)
        partial = self.path.with_suffix(f".{os.getpid()}.part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(entries, indent=1, sort_keys=True))
            partial.replace(self.path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            log.warning("could not keep the inference size choice in %s: %s", self.path, error)

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
