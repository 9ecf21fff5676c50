"""Classical enhancers: the baselines of every quality table and the fallback when no trained
weights are installed.

* dehazing: He et al., "Single Image Haze Removal Using Dark Channel Prior" (CVPR 2009), with the
  transmission refined by the (fast) guided filter (He et al., ECCV 2010);
* low light: Dong et al., "Fast efficient algorithm for enhancement of low lighting video"
  (ICME 2011): an inverted low-light image looks hazy, so dehaze the inversion and invert back;
* rain: a 5×5 median filter, which removes streaks up to two pixels wide at the cost of fine
  texture. A weak baseline, stated as such.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hdm._checks import check_images
from hdm.dcp import DCPParams, airlight, dark_channel, downscale, grey, guided_filter
from hdm.errors import ModelConfigError
from hdm.model import TASKS

__all__ = ["ClassicalEnhancer", "dehaze", "derain", "enhance_lowlight"]

# Estimate at half resolution: fast at 720p and still fine-grained after refinement.
CLASSICAL_PARAMS = DCPParams(scale=2, patch=7, gf_radius=16, gf_eps=1e-3)
MIN_TRANSMISSION = 0.1


def _refined_transmission(
    x: torch.Tensor, params: DCPParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """(full-resolution refined transmission B×1×H×W, airlight B×3) of a hazy-looking batch."""
    small = downscale(x, params.scale)
    light = airlight(small, dark_channel(small, params.patch), params.top_fraction)
    raw = 1.0 - params.omega * dark_channel(small / light.view(-1, 3, 1, 1), params.patch)
    refined = guided_filter(
        grey(small), raw, params.gf_radius, params.gf_eps, full_guide=grey(x)
    )
    return refined.clamp(0.0, 1.0), light


def _recover(x: torch.Tensor, t: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """Invert the scattering model I = J t + A (1 - t)."""
    a = light.view(-1, 3, 1, 1)
    return ((x - a) / t.clamp_min(MIN_TRANSMISSION) + a).clamp(0.0, 1.0)


def dehaze(x: torch.Tensor, params: DCPParams = CLASSICAL_PARAMS) -> torch.Tensor:
    """Dark-channel-prior dehazing of a B×3×H×W batch in [0, 1]."""
    x = check_images(x).float()
    t, light = _refined_transmission(x, params)
    return _recover(x, t, light)


def enhance_lowlight(x: torch.Tensor, params: DCPParams = CLASSICAL_PARAMS) -> torch.Tensor:
    """Dong et al.: dehaze the inverted image; transmissions below 0.5 are squared
    (t -> 2t²) to brighten the darkest regions more, as in the paper."""
    inverted = 1.0 - check_images(x).float()
    t, light = _refined_transmission(inverted, params)
    t = torch.where(t < 0.5, 2.0 * t * t, t)
    return 1.0 - _recover(inverted, t, light)


def derain(x: torch.Tensor, size: int = 5) -> torch.Tensor:
    """Median filter per channel (replicate borders): removes thin streaks, keeps step edges."""
    x = check_images(x).float()
    pad = size // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    windows = padded.unfold(2, size, 1).unfold(3, size, 1)  # B×3×H×W×size×size
    return windows.flatten(-2).median(dim=-1).values


class ClassicalEnhancer(nn.Module):
    """The classical method of a task as a module with the same interface as HDM."""

    def __init__(self, task: str) -> None:
        super().__init__()
        methods: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "dehaze": dehaze, "derain": derain, "lowlight": enhance_lowlight}
        if task not in methods:
            raise ModelConfigError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task
        self._method = methods[task]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._method(x).to(x.dtype)
