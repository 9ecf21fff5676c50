"""Which enhancement a picture needs, from cheap statistics of a thumbnail.

Each task harms a picture that does not need it: dehazing darkens a clear day's shadows,
low-light enhancement washes out daylight, deraining smears fine stripes. The statistics, on a
picture 256 pixels wide:

* ``brightness``: mean BT.601 luma. Dark pictures need low light.
* ``black``: the 1st percentile of luma. Haze lifts the black level (airlight is added
  everywhere); a clear picture keeps some near-black pixels.
* ``colourfulness``: mean of max − min over the channels. Haze washes colour out.
* ``streaks``: bright thin residuals (luma above its 5×5 median) are rain when their
  horizontal gradients outweigh their vertical ones (streaks fall near vertically);
  ``residual`` is their mean, in percent.

The thresholds were chosen on ../shared/data's sets (every set's task known; clean targets as
``none``), so the accuracy measured there (benchmarks/bench_scene.py) flatters them; the margins
keep a picture near a threshold on the side it was on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np

__all__ = ["SCENE_TASKS", "SceneStats", "SceneTask", "classify", "bright_residual", "scene_stats",
           "streak_gradients"]

SceneTask = Literal["dehaze", "derain", "lowlight", "none"]
SCENE_TASKS: tuple[SceneTask, ...] = get_args(SceneTask)

_WIDTH = 256
_DARK = 0.26  # brightness below: low light
_STREAKS, _RESIDUAL = 1.15, 1.2  # streak orientation and residual above: rain
_BLACK, _COLOURFUL = 0.08, 0.20  # black level above and colourfulness below: haze
_MARGIN = 0.15  # relative: how far past a threshold a picture must go to leave its task


@dataclass(frozen=True)
class SceneStats:
    brightness: float
    black: float
    colourfulness: float
    streaks: float
    residual: float


def bright_residual(grey: np.ndarray) -> np.ndarray:
    """A float grey picture's bright thin structures: luma above its 5×5 median (rain
    streaks, specks, fine highlights)."""
    median = cv2.medianBlur(np.clip(grey * 255, 0, 255).astype(np.uint8), 5)
    return np.clip(grey - median.astype(np.float32) / 255, 0, None)


def streak_gradients(bright: np.ndarray) -> tuple[float, float]:
    """Mean horizontal and vertical gradients of :func:`bright_residual`: rain streaks,
    falling near vertically, give much more of the first."""
    return (float(np.abs(cv2.Sobel(bright, cv2.CV_32F, 1, 0)).mean()),
            float(np.abs(cv2.Sobel(bright, cv2.CV_32F, 0, 1)).mean()))


def scene_stats(rgb: np.ndarray) -> SceneStats:
    """Statistics of an H×W×3 RGB picture (uint8, uint16 or float in [0, 1])."""
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype, 1.0)
    height, width = rgb.shape[:2]
    size = (_WIDTH, max(1, round(height * _WIDTH / width)))
    small = cv2.resize(rgb.astype(np.float32) / scale, size, interpolation=cv2.INTER_AREA)
    grey = small @ np.array([0.299, 0.587, 0.114], np.float32)
    bright = bright_residual(grey)
    across, along = streak_gradients(bright)
    return SceneStats(brightness=float(grey.mean()), black=float(np.percentile(grey, 1)),
                      colourfulness=float((small.max(2) - small.min(2)).mean()),
                      streaks=across / (along + 1e-6), residual=float(bright.mean()) * 100)


def classify(stats: SceneStats, current: SceneTask | None = None) -> SceneTask:
    """The task the picture needs; ``current`` (the task so far) is kept unless the picture is
    clearly past a threshold (hysteresis: a dusk that hovers at the low-light threshold does not
    switch the task frame by frame)."""

    def past(value: float, threshold: float, above: bool, task: SceneTask) -> bool:
        # Leaving ``current`` takes a margin beyond the threshold; entering another task too.
        margin = 1.0 if current is None else 1 - _MARGIN if task == current else 1 + _MARGIN
        return value > threshold * margin if above else value < threshold / margin

    if past(stats.brightness, _DARK, False, "lowlight"):
        return "lowlight"
    if past(stats.streaks, _STREAKS, True, "derain") and past(stats.residual, _RESIDUAL, True,
                                                             "derain"):
        return "derain"
    if past(stats.black, _BLACK, True, "dehaze") and past(stats.colourfulness, _COLOURFUL,
                                                         False, "dehaze"):
        return "dehaze"
    return "none"
