"""Which enhancement a picture needs, from cheap statistics of a thumbnail.

Each task harms a picture that does not need it: dehazing darkens a clear day's shadows,
low-light enhancement washes out daylight, deraining smears fine stripes. The statistics, on a
picture 256 pixels wide:

* ``brightness``: mean BT.601 luma. Dark pictures need low light.
* ``black``: the 1st percentile of luma. Haze lifts the black level (airlight is added
  everywhere); a clear picture keeps some near-black pixels.
* ``contrast``: the 75th percentile over 8×8 blocks of their RMS contrast (standard
  deviation over mean): the detail of the picture's textured part. Haze flattens detail
  wherever it lies, while a pale clear picture (snow, a white kitchen, a polar bear) keeps its
  edges, and a clear sky or wall, flat but no haze, falls below the percentile.
* ``colourfulness``: mean of max − min over the channels. Haze washes colour out; a flat
  but saturated picture (a blue sky, a red door) is not haze.
* ``streaks``: bright thin residuals (luma above its 5×5 median) are rain when their
  horizontal gradients outweigh their vertical ones (streaks fall near vertically);
  ``residual`` is their mean, in percent.

The thresholds were chosen on ../shared/train and one half of ../shared/data's sets, and
measured on the other half (benchmarks/bench_scene.py, which chooses them again and says where
they differ): right for about 70% of held-out hazy, rainy and clear pictures and 80% of dark
ones, which is why ``auto`` is not the default. The margins keep a picture near a threshold on
the side it was on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np

__all__ = ["SCENE_TASKS", "THRESHOLDS", "SceneStats", "SceneTask", "Thresholds", "classify",
           "bright_residual", "scene_stats", "streak_gradients", "thumbnail"]

SceneTask = Literal["dehaze", "derain", "lowlight", "none"]
SCENE_TASKS: tuple[SceneTask, ...] = get_args(SceneTask)

_WIDTH = 256
_BLOCK = 8
_MARGIN = 0.15  # relative: how far past a threshold a picture must go to leave its task
_LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)


@dataclass(frozen=True)
class Thresholds:
    """Where each task starts: low light below ``dark`` brightness; rain above ``streaks``
    and ``residual``; haze above ``black``, below ``contrast`` and below ``colourful``."""

    dark: float
    streaks: float
    residual: float
    black: float
    contrast: float
    colourful: float


THRESHOLDS = Thresholds(dark=0.251, streaks=1.115, residual=1.156, black=0.157, contrast=0.168,
                        colourful=0.315)


@dataclass(frozen=True)
class SceneStats:
    brightness: float
    black: float
    contrast: float
    colourfulness: float
    streaks: float
    residual: float


def thumbnail(image: np.ndarray, width: int = _WIDTH) -> np.ndarray:
    """``image`` (H×W or H×W×C, any dtype) ``width`` pixels wide, area-averaged. A whole
    factor first, which OpenCV averages several times faster than an arbitrary one (a 1080p
    frame in about 1.5 ms rather than 4), then the small rest."""
    height, full = image.shape[:2]
    size = (width, max(1, round(height * width / full)))
    factor = max(1, full // width)
    if factor > 1:
        image = cv2.resize(image[:height // factor * factor, :full // factor * factor],
                           (full // factor, height // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


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


def _block_contrast(grey: np.ndarray) -> float:
    """The 75th percentile of the 8×8 blocks' RMS contrast (the offset keeps black blocks from
    counting as contrasty: their noise over a mean near zero)."""
    height, width = (s // _BLOCK * _BLOCK for s in grey.shape)
    blocks = grey[:height, :width].reshape(height // _BLOCK, _BLOCK, width // _BLOCK, _BLOCK)
    return float(np.percentile(blocks.std((1, 3)) / (blocks.mean((1, 3)) + 0.05), 75))


def scene_stats(rgb: np.ndarray) -> SceneStats:
    """Statistics of an H×W×3 RGB picture (uint8, uint16 or float in [0, 1])."""
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype, 1.0)
    small = thumbnail(rgb).astype(np.float32) / np.float32(scale)
    grey = cv2.transform(small, _LUMA)
    red, green, blue = (small[..., c] for c in range(3))
    spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    flat = grey.ravel()
    bright = bright_residual(grey)
    across, along = streak_gradients(bright)
    return SceneStats(brightness=float(flat.mean()),
                      black=float(np.partition(flat, flat.size // 100)[flat.size // 100]),
                      contrast=_block_contrast(grey), colourfulness=float(spread.mean()),
                      streaks=across / (along + 1e-6),
                      residual=float(bright.mean()) * 100)


def classify(stats: SceneStats, current: SceneTask | None = None,
             thresholds: Thresholds = THRESHOLDS) -> SceneTask:
    """The task the picture needs; ``current`` (the task so far) is kept unless the picture is
    clearly past a threshold (hysteresis: a dusk that hovers at the low-light threshold does not
    switch the task frame by frame)."""

    def past(value: float, threshold: float, above: bool, task: SceneTask) -> bool:
        # Leaving ``current`` takes a margin beyond the threshold; entering another task too.
        margin = 1.0 if current is None else 1 - _MARGIN if task == current else 1 + _MARGIN
        return value > threshold * margin if above else value < threshold / margin

    t = thresholds
    if past(stats.brightness, t.dark, False, "lowlight"):
        return "lowlight"
    if past(stats.streaks, t.streaks, True, "derain") and past(stats.residual, t.residual, True,
                                                              "derain"):
        return "derain"
    if (past(stats.black, t.black, True, "dehaze") and past(stats.contrast, t.contrast, False,
                                                           "dehaze")
            and past(stats.colourfulness, t.colourful, False, "dehaze")):
        return "dehaze"
    return "none"
