"""The released HDM's way of making region masks: NumPy/OpenCV on the CPU, one image at a time.

A re-implementation from the description in the design reference (section 4a), used as the
baseline of the speed benchmarks and to check how closely hdm.dcp's masks agree with the
release's. Not part of the product.
"""

from __future__ import annotations

import cv2
import numpy as np

REGIONS = 5


def _guided_filter(guide: np.ndarray, src: np.ndarray, window: int, eps: float) -> np.ndarray:
    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_64F, (window, window))

    mean_i, mean_p = box(guide), box(src)
    cov = box(guide * src) - mean_i * mean_p
    var = box(guide * guide) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def _airlight(image: np.ndarray) -> float:
    """``get_dc_A``: channel minimum, eroded 223×223, guided-filtered (111, 1e-3), then the
    largest mean intensity among pixels above the 99.9th percentile of a 2000-bin histogram."""
    channel_min = image.min(axis=2)
    eroded = cv2.erode(channel_min, np.ones((223, 223), np.uint8))
    refined = _guided_filter(channel_min, eroded, 111, 1e-3)
    low, high = float(refined.min()), float(refined.max())
    hist, edges = np.histogram(refined, bins=2000, range=(low, max(high, low + 1e-6)))
    cumulative = np.cumsum(hist) / refined.size
    threshold = edges[np.searchsorted(cumulative, 0.999)]
    mask = refined >= threshold
    return float(image.mean(axis=2)[mask].max())


def release_masks(rgb: np.ndarray, lowlight: bool = False) -> np.ndarray:
    """5×(H/4)×(W/4) one-hot masks for an H×W×3 uint8 RGB image, region 0 = least haze."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    if lowlight:
        small = np.round(np.power(small / 255.0, 0.25) * 255).astype(np.uint8)
    image = small.astype(np.float64) / 255.0
    light = _airlight(image)
    raw = 1.0 - 0.95 * cv2.erode((image / light).min(axis=2), np.ones((15, 15), np.uint8))
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float64) / 255.0  # sic: RGB data
    t = _guided_filter(grey, raw, 60, 1e-4)
    span = t.max() - t.min()
    level = (t - t.min()) / span if span > 0 else np.zeros_like(t)
    index = (REGIONS - 1) - np.clip(np.floor(level * REGIONS), 0, REGIONS - 1).astype(int)
    return np.stack([(index == r) for r in range(REGIONS)]).astype(np.float32)
