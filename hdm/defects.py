"""What a viewer calls a defect in an enhanced picture, measured against its input (no ground
truth needed), for ``hdm-stream eval``:

* ``neutral_cast``: the colour added where the input is neutral (grey walls, sky, road): the
  largest per-channel shift of the output from its own grey there, beyond the input's, in 8-bit
  levels. A purple night or a brown fog shows here, where a mean over the picture (CIELAB
  a*b*, photo_stats.fidelity) can hide it behind coloured pixels.
* ``blotches``: % of the input's flat pixels (local spread under 2 levels) that the output made
  far darker than their neighbourhood (12 levels below its 61×61 median, more than the input
  was): the soft dark patches dehazing leaves in skies and on walls.
* ``streaks_left``: the rain-streak energy of the output, % of the input's (horizontal
  gradients of bright thin residuals, as hdm/scene.py's rain cue).
* ``psnr_to_input`` and ``shadows_crushed``: for clear pictures, how far the output strayed
  from the input (dB) and % of pixels the input had above 5% grey that the output put below 2%.

All at 512 pixels wide, so a measure means the same at every picture size.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from hdm.scene import bright_residual, streak_gradients

__all__ = ["defects"]

_WIDTH = 512
_FLAT_LEVELS = 2.0
_DARKER_LEVELS = 12.0
_NEIGHBOURHOOD = 61
_NEUTRAL_SATURATION = 0.08
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _small(x: torch.Tensor) -> np.ndarray:
    rgb = np.ascontiguousarray(x[0].permute(1, 2, 0).float().clamp(0, 1).numpy())
    height = max(1, round(rgb.shape[0] * _WIDTH / rgb.shape[1]))
    return cv2.resize(rgb, (_WIDTH, height), interpolation=cv2.INTER_AREA)


def _below_median(grey: np.ndarray) -> np.ndarray:
    """How far each pixel is below its neighbourhood's median, in levels."""
    codes = np.clip(grey * 255, 0, 255).astype(np.uint8)
    return cv2.medianBlur(codes, _NEIGHBOURHOOD).astype(np.float32) - grey * 255


def _neutral_cast(source: np.ndarray, out: np.ndarray) -> float:
    spread = source.max(2) - source.min(2)
    value = source.max(2)
    neutral = (spread < _NEUTRAL_SATURATION * np.maximum(value, 1e-3)) & (value > 0.1) \
        & (value < 0.95)
    if neutral.sum() < 100:
        return float("nan")
    tint_out = (out - out.mean(2, keepdims=True))[neutral].mean(0)
    tint_in = (source - source.mean(2, keepdims=True))[neutral].mean(0)
    return float(np.abs(tint_out - tint_in).max() * 255)


def defects(source: torch.Tensor, out: torch.Tensor) -> dict[str, float]:
    """The measures above for ``out`` made from ``source`` (both 1×3×H×W in [0, 1])."""
    src, res = _small(source), _small(out)
    grey_in, grey_out = src @ _LUMA, res @ _LUMA
    spread = cv2.dilate(grey_in, np.ones((7, 7), np.uint8)) - cv2.erode(grey_in,
                                                                       np.ones((7, 7), np.uint8))
    flat = spread * 255 < _FLAT_LEVELS
    darker = (_below_median(grey_out) - _below_median(grey_in)) > _DARKER_LEVELS
    across_in, _ = streak_gradients(bright_residual(grey_in))
    across_out, _ = streak_gradients(bright_residual(grey_out))
    error = float(np.mean((res - src) ** 2))
    lit = grey_in > 0.05
    return {
        "neutral_cast": _neutral_cast(src, res),
        "blotches": float(100 * darker[flat].mean()) if flat.any() else 0.0,
        "streaks_left": 100 * across_out / max(across_in, 1e-6),
        "psnr_to_input": float(10 * np.log10(1 / error)) if error > 0 else float("inf"),
        "shadows_crushed": float(100 * (lit & (grey_out < 0.02)).mean()),
    }
