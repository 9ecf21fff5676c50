"""Statistics of enhanced real photos, which have no ground truth: what the picture is like, and
what the enhancer did to it that a person would call a defect.

``describe`` measures one picture (brightness, contrast, haze, colourfulness, edges).
``fidelity`` compares an output with its input: hue kept on clearly coloured pixels (a common
brightening cannot change hue, so a low-light enhancer that turns greens yellow shows here),
pixels clipped to white (blown skies), pixels crushed to black (dehazing's dark blotches) and the
colour cast added (shift of the mean CIELAB a*, b*).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from hdm.dcp import dark_channel

__all__ = ["COLOURED", "describe", "fidelity"]

# A pixel is clearly coloured when its HSV saturation and value reach these (value: so that the
# hue of a dark input pixel is not noise).
COLOURED = {"saturation": 0.3, "value": 0.1}
HUE_TOLERANCE = 15.0  # degrees
STILL_COLOURED = 0.15  # an output pixel greyer than this has lost its hue
WHITE = 250 / 255  # every channel at least this: clipped to white
BLACK = 10 / 255  # grey below this: crushed to black


def describe(x: torch.Tensor) -> dict[str, float]:
    """Brightness, RMS contrast, haze proxy (mean dark channel), colourfulness (Hasler &
    Süsstrunk) and edge density of a 1×3×H×W picture in [0, 1]."""
    grey = x.mean(dim=1)
    r, g, b = x[0] * 255
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = torch.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * torch.sqrt(
        rg.mean() ** 2 + yb.mean() ** 2)
    edges = cv2.Canny((grey[0].numpy() * 255).astype(np.uint8), 100, 200)
    return {"brightness": grey.mean().item(), "contrast": grey.std().item(),
            "dark_channel": dark_channel(x, 15).mean().item(),
            "colourfulness": colourful.item(), "edge_density": float((edges > 0).mean())}


def _hsv_lab(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.ascontiguousarray(x[0].permute(1, 2, 0).float().clamp(0, 1).numpy())
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV), cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def fidelity(source: torch.Tensor, out: torch.Tensor) -> dict[str, float]:
    """What ``out`` did to ``source`` (both 1×3×H×W in [0, 1]), in percent of pixels except the
    cast: ``hue_kept`` (of the clearly coloured source pixels, those whose hue moved at most 15°
    and that are still coloured), ``white`` (clipped to white), ``black`` (crushed to black) and
    ``cast`` (distance between the mean a*, b* of output and source, CIELAB units)."""
    hsv_in, lab_in = _hsv_lab(source)
    hsv_out, lab_out = _hsv_lab(out)
    coloured = ((hsv_in[..., 1] >= COLOURED["saturation"])
                & (hsv_in[..., 2] >= COLOURED["value"]))
    turn = np.abs(hsv_out[..., 0] - hsv_in[..., 0])
    turn = np.minimum(turn, 360 - turn)
    kept = (turn <= HUE_TOLERANCE) & (hsv_out[..., 1] >= STILL_COLOURED)
    grey = out[0].float().mean(dim=0)
    shift = lab_out[..., 1:].reshape(-1, 2).mean(0) - lab_in[..., 1:].reshape(-1, 2).mean(0)
    return {
        "hue_kept": float(100 * kept[coloured].mean()) if coloured.any() else float("nan"),
        "coloured_pixels": float(100 * coloured.mean()),
        "white": float(100 * (out[0].min(dim=0).values >= WHITE).float().mean()),
        "black": float(100 * (grey < BLACK).float().mean()),
        "cast": float(np.hypot(*shift)),
    }
