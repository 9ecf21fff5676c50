"""The dark channel prior (He et al., CVPR 2009) as batched tensor functions, and HDM's region
masks.

Everything works on B×3×H×W float images in [0, 1] on any device and traces under torch.compile
(no data-dependent Python control flow, no host synchronisation). Computation is in float32
whatever the input dtype, because the box filter's running sums need it.

The masks follow the released HDM recipe (``hard``: five bins over per-image min-max normalised
transmission, computed at 1/4 scale) with three deliberate departures, all for video:

* the airlight is a robust mean over the brightest 0.1% of the dark channel, not the release's
  histogram of a 223×223-eroded, 111-guided-filtered map;
* the guided filter runs on integral images, so its cost does not grow with its radius;
* the statistics that make masks jump between frames (airlight, normalisation range) are returned
  as :class:`DCPStats` and can be passed back in, so a video pipeline can smooth them, and a
  ``soft`` mode gives masks that vary continuously with the transmission.

Because the airlight is one grey value per image, the refined transmission is an affine function
of the refined dark channel, ``t = 1 - omega * D / A`` (the guided filter is linear in its input).
:func:`estimate` therefore returns ``D`` once and any airlight can be applied to it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

from hdm._checks import check_images
from hdm.errors import InputError, ModelConfigError

__all__ = [
    "DCPParams",
    "DCPStats",
    "MaskMode",
    "airlight",
    "box_filter",
    "dark_channel",
    "dcp_masks",
    "estimate",
    "grey",
    "guided_filter",
    "min_filter",
    "normalised_transmission",
    "region_masks",
    "transmission",
    "transmission_range",
]

MaskMode = Literal["hard", "soft"]
MASK_MODES: tuple[MaskMode, ...] = ("hard", "soft")
_RANGE_EPS = 1e-6


@dataclass(frozen=True)
class DCPParams:
    """Constants of the dark-channel estimate; the defaults are the release's mask recipe.

    Args:
        scale: the estimate runs on the image downscaled by this factor (area averaging).
        patch: side of the square min filter (odd), in downscaled pixels.
        omega: fraction of haze removed (He et al.'s ω), keeps a little haze for depth cues.
        top_fraction: share of the brightest dark-channel pixels whose colour gives the airlight.
        gf_radius: guided-filter radius in downscaled pixels (window side 2r+1).
        gf_eps: guided-filter regulariser; larger smooths more across edges.
        airlight_floor: lower bound on the airlight so black frames stay finite.
    """

    scale: int = 4
    patch: int = 15
    omega: float = 0.95
    top_fraction: float = 0.001
    gf_radius: int = 30
    gf_eps: float = 1e-4
    airlight_floor: float = 0.05

    def __post_init__(self) -> None:
        if self.scale < 1 or self.patch < 1 or self.patch % 2 == 0:
            raise ModelConfigError(f"DCPParams needs scale >= 1 and an odd patch >= 1, got {self}")
        if not 0.0 < self.omega <= 1.0 or not 0.0 < self.top_fraction <= 1.0:
            raise ModelConfigError(f"DCPParams needs omega and top_fraction in (0, 1], got {self}")


@dataclass(frozen=True)
class DCPStats:
    """Per-image statistics that decide where the region masks fall.

    Attributes:
        airlight: (B,) grey atmospheric light, in [airlight_floor, 1].
        t_low: (B,) transmission value mapped to 0 by the normalisation.
        t_high: (B,) transmission value mapped to 1 by the normalisation.
    """

    airlight: torch.Tensor
    t_low: torch.Tensor
    t_high: torch.Tensor

    def __len__(self) -> int:
        return int(self.airlight.shape[0])

    def __getitem__(self, index: int | slice) -> DCPStats:
        """Statistics of one image (kept 1-D) or a slice of the batch."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return DCPStats(self.airlight[index], self.t_low[index], self.t_high[index])

    def to(self, device: torch.device | str) -> DCPStats:
        return replace(
            self,
            airlight=self.airlight.to(device),
            t_low=self.t_low.to(device),
            t_high=self.t_high.to(device),
        )


LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # BT.601


def grey(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of an RGB batch, B×1×H×W (the release swapped R and B here; we do not)."""
    weights = x.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def downscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Area-average ``x`` by ``scale`` (floor of the size, at least one pixel)."""
    if scale == 1:
        return x
    size = (max(1, x.shape[-2] // scale), max(1, x.shape[-1] // scale))
    return F.interpolate(x, size=size, mode="area")


def min_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square erosion with an odd window; borders see only the pixels inside the image.

    Separable (a row pass, then a column pass): 2·size comparisons per pixel, not size².
    """
    half = size // 2
    rows = -F.max_pool2d(-x, (1, size), stride=1, padding=(0, half))
    return -F.max_pool2d(-rows, (size, 1), stride=1, padding=(half, 0))


def dark_channel(x: torch.Tensor, patch: int = 15) -> torch.Tensor:
    """Channel minimum, then a ``patch``×``patch`` min filter: B×3×H×W -> B×1×H×W."""
    return min_filter(x.amin(dim=1, keepdim=True), patch)


def _window_sums(x: torch.Tensor, radius: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over [i - r, i + r] ∩ image along ``dim`` from a running sum, and the window lengths."""
    n = x.shape[dim]
    running = F.pad(x.cumsum(dim), (1, 0) if dim == -1 else (0, 0, 1, 0))
    positions = torch.arange(n, device=x.device)
    upper = (positions + radius + 1).clamp(max=n)
    lower = (positions - radius).clamp(min=0)
    sums = running.index_select(dim, upper) - running.index_select(dim, lower)
    return sums, (upper - lower).to(x.dtype)


def box_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)² window clipped to the image; O(1) per pixel in the radius."""
    rows, row_counts = _window_sums(x, radius, -2)
    sums, col_counts = _window_sums(rows, radius, -1)
    return sums / (row_counts.view(-1, 1) * col_counts.view(1, -1))


def guided_filter(
    guide: torch.Tensor,
    src: torch.Tensor,
    radius: int,
    eps: float,
    *,
    full_guide: torch.Tensor | None = None,
) -> torch.Tensor:
    """He et al.'s guided filter with a one-channel guide (B×1×h×w), output like ``src``.

    With ``full_guide`` (a larger version of ``guide``) the linear coefficients are upsampled and
    applied to it: the "fast guided filter", which returns ``src`` refined at full resolution.
    """
    mean_i = box_filter(guide, radius)
    mean_p = box_filter(src, radius)
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    cov_ip = box_filter(guide * src, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a, mean_b = box_filter(a, radius), box_filter(b, radius)
    if full_guide is None:
        return mean_a * guide + mean_b
    size = full_guide.shape[-2:]
    mean_a = F.interpolate(mean_a, size=size, mode="bilinear", align_corners=False)
    mean_b = F.interpolate(mean_b, size=size, mode="bilinear", align_corners=False)
    return mean_a * full_guide + mean_b


def airlight(
    x: torch.Tensor, dark: torch.Tensor, top_fraction: float = 0.001, floor: float = 0.05
) -> torch.Tensor:
    """Atmospheric light per image, B×3: the mean colour of the brightest ``top_fraction`` of
    the dark channel (a mean, not the single brightest pixel, so one specular highlight or a
    few noisy pixels cannot move it)."""
    count = max(1, int(dark.shape[-2] * dark.shape[-1] * top_fraction))
    index = dark.flatten(1).topk(count, dim=1).indices
    colours = x.flatten(2).gather(2, index.unsqueeze(1).expand(-1, x.shape[1], -1))
    return colours.mean(dim=2).clamp(floor, 1.0)


def transmission(dark: torch.Tensor, airlight: torch.Tensor, omega: float = 0.95) -> torch.Tensor:
    """``1 - omega * dark / A`` with a grey airlight (B,), clamped to [0, 1]."""
    return (1.0 - omega * dark / airlight.view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def transmission_range(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image minimum and maximum of a transmission map, each (B,)."""
    flat = t.flatten(1)
    return flat.amin(dim=1), flat.amax(dim=1)


def _prepare(x: torch.Tensor, scale: int, lowlight: bool) -> torch.Tensor:
    small = downscale(x.detach().float(), scale).clamp(0.0, 1.0)
    if lowlight:
        # The release brightens with gamma 0.25 and requantises to 8 bits before the DCP.
        small = torch.round(small.pow(0.25) * 255.0) / 255.0
    return small


def estimate(
    x: torch.Tensor, *, lowlight: bool = False, params: DCPParams = DCPParams()
) -> tuple[torch.Tensor, DCPStats]:
    """Refined dark channel ``D`` (B×1×H/s×W/s) and the measured :class:`DCPStats` of ``x``.

    ``transmission(D, stats.airlight, params.omega)`` is the refined transmission.
    """
    small = _prepare(x, params.scale, lowlight)
    dark = dark_channel(small, params.patch)
    light = airlight(small, dark, params.top_fraction, params.airlight_floor).mean(dim=1)
    refined = guided_filter(grey(small), dark, params.gf_radius, params.gf_eps)
    t_low, t_high = transmission_range(transmission(refined, light, params.omega))
    return refined, DCPStats(light, t_low, t_high)


def normalised_transmission(
    t: torch.Tensor, t_low: torch.Tensor, t_high: torch.Tensor
) -> torch.Tensor:
    """``t`` mapped so that t_low -> 0 and t_high -> 1, clamped to [0, 1] (B×1×h×w)."""
    span = (t_high - t_low).clamp_min(_RANGE_EPS).view(-1, 1, 1, 1)
    return ((t - t_low.view(-1, 1, 1, 1)) / span).clamp(0.0, 1.0)


def region_masks(
    t: torch.Tensor,
    t_low: torch.Tensor,
    t_high: torch.Tensor,
    *,
    regions: int = 5,
    mode: MaskMode = "hard",
) -> torch.Tensor:
    """Region masks B×R×h×w from a transmission map B×1×h×w; every pixel's weights sum to 1.

    Region 0 holds the least haze (normalised transmission near 1), region R-1 the most, as in
    the release. ``hard``: one-hot over R equal bins. ``soft``: triangular weights centred on the
    bin centres (a partition of unity), so a pixel drifting across a bin edge hands its weight
    over gradually instead of flipping. A flat map (t_high == t_low) lands in the last region.
    """
    if mode not in MASK_MODES:
        raise ModelConfigError(f"mask mode must be one of {MASK_MODES}, got {mode!r}")
    level = normalised_transmission(t, t_low, t_high)
    region_ids = torch.arange(regions, device=t.device).view(1, regions, 1, 1)
    if mode == "hard":
        index = (regions - 1) - (level * regions).floor().clamp(max=regions - 1)
        return (index == region_ids).to(torch.float32)
    centres = (regions - 1 - region_ids + 0.5) / regions
    level = level.clamp(0.5 / regions, 1.0 - 0.5 / regions)
    return (1.0 - (level - centres).abs() * regions).clamp_min(0.0)


def dcp_masks(
    x: torch.Tensor,
    *,
    regions: int = 5,
    mode: MaskMode = "hard",
    lowlight: bool = False,
    stats: DCPStats | None = None,
    params: DCPParams = DCPParams(),
) -> tuple[torch.Tensor, DCPStats]:
    """HDM's region masks for a batch: (B×R×H/4×W/4 float32 masks, the statistics used).

    Without ``stats`` the measured statistics are used and returned; with ``stats`` (for example
    temporally smoothed ones) those replace the measured airlight and range, and are returned
    unchanged, so passing the result back in reproduces the same masks.
    """
    check_images(x)
    if stats is not None and len(stats) != x.shape[0]:
        raise InputError(f"got statistics for {len(stats)} images but a batch of {x.shape[0]}")
    refined, measured = estimate(x, lowlight=lowlight, params=params)
    used = measured if stats is None else stats.to(x.device)
    t = transmission(refined, used.airlight, params.omega)
    return region_masks(t, used.t_low, used.t_high, regions=regions, mode=mode), used
