"""Temporal smoothing of HDM's DCP region masks, one state per stream.

Per-frame masks flicker on video: the airlight is re-estimated from a 0.1% percentile and the
transmission is min-max normalised per frame, so a small dark object entering a corner moves the
bins of the whole frame. The smoother keeps an exponential moving average of the airlight and of
the normalisation range, holds hard bins until a pixel leaves its bin by a margin (hysteresis),
averages soft masks over time, and resets everything on a scene cut.

All state stays on the device and is updated with tensor ops only, so smoothing never waits for
the GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hdm import dcp
from hdm.dcp import DCPParams, MaskMode

__all__ = ["MaskSmoother", "SmoothingParams"]

_THUMBNAIL = (18, 32)


@dataclass(frozen=True)
class SmoothingParams:
    """Args:
    enabled: smooth at all (off: every frame gets its own masks, as in the release).
    alpha: weight of the newest frame in the moving averages (0.1: about 10 frames of memory).
    hysteresis: a hard-mask pixel changes bin only once it is this far (in normalised
        transmission) past the bin edge.
    scene_cut: mean absolute difference of grey thumbnails above which state resets.
    """

    enabled: bool = True
    alpha: float = 0.1
    hysteresis: float = 0.04
    scene_cut: float = 0.12


class MaskSmoother:
    """Masks for consecutive frames of one stream, steadied over time."""

    def __init__(
        self,
        *,
        regions: int,
        mode: MaskMode,
        lowlight: bool,
        params: SmoothingParams = SmoothingParams(),
        dcp_params: DCPParams = DCPParams(),
        estimate: Callable[..., tuple[torch.Tensor, dcp.DCPStats]] = dcp.estimate,
    ) -> None:
        """``estimate`` computes the refined dark channel and statistics (``hdm.dcp.estimate``
        or a compiled version of it)."""
        self.regions = regions
        self.mode = mode
        self.lowlight = lowlight
        self.params = params
        self.dcp_params = dcp_params
        self.estimate = estimate
        self.reset()

    def reset(self) -> None:
        self._airlight: torch.Tensor | None = None
        self._range: tuple[torch.Tensor, torch.Tensor] | None = None
        self._masks: torch.Tensor | None = None
        self._thumbnail: torch.Tensor | None = None
        self.cuts = torch.zeros((), dtype=torch.int64)

    def __call__(self, x: torch.Tensor, count: int | None = None) -> torch.Tensor:
        """Masks count×R×H/4×W/4 for the first ``count`` frames (default: all) of the batch
        ``x`` (B×3×H×W, consecutive frames, H and W multiples of 4), each frame smoothed
        against the ones before it (unless disabled). Frames past ``count`` (padding for a
        compiled batch size) are estimated with the rest but neither returned nor remembered."""
        count = x.shape[0] if count is None else count
        refined, measured = self.estimate(x, lowlight=self.lowlight, params=self.dcp_params)
        if not self.params.enabled:
            t = dcp.transmission(refined, measured.airlight, self.dcp_params.omega)
            masks = dcp.region_masks(t, measured.t_low, measured.t_high, regions=self.regions,
                                     mode=self.mode)
            return masks[:count]
        thumbnails = F.adaptive_avg_pool2d(dcp.grey(x.float()), _THUMBNAIL)
        out = []
        for i in range(count):
            out.append(self._step(refined[i : i + 1], measured[i], thumbnails[i : i + 1]))
        return torch.cat(out)

    def _step(
        self, refined: torch.Tensor, measured: dcp.DCPStats, thumbnail: torch.Tensor
    ) -> torch.Tensor:
        alpha = self.params.alpha
        if self._thumbnail is None or self._thumbnail.shape != thumbnail.shape:
            self.reset()
            cut = torch.ones((), dtype=torch.bool, device=refined.device)
        else:
            cut = (thumbnail - self._thumbnail).abs().mean() > self.params.scene_cut
            self.cuts = self.cuts.to(cut.device) + cut.long()
        self._thumbnail = thumbnail
        weight = torch.where(cut, torch.ones_like(measured.airlight), alpha)

        airlight = measured.airlight if self._airlight is None else torch.lerp(
            self._airlight, measured.airlight, weight
        )
        t = dcp.transmission(refined, airlight, self.dcp_params.omega)
        low, high = dcp.transmission_range(t)
        if self._range is not None:
            low = torch.lerp(self._range[0], low, weight)
            high = torch.lerp(self._range[1], high, weight)
        self._airlight, self._range = airlight, (low, high)

        masks = dcp.region_masks(t, low, high, regions=self.regions, mode=self.mode)
        if self._masks is not None and self._masks.shape == masks.shape:
            if self.mode == "hard":
                masks = self._hold_bins(t, low, high, masks, cut)
            else:
                masks = torch.lerp(self._masks, masks, weight.view(1, 1, 1, 1))
        self._masks = masks
        return masks

    def _hold_bins(
        self,
        t: torch.Tensor,
        low: torch.Tensor,
        high: torch.Tensor,
        masks: torch.Tensor,
        cut: torch.Tensor,
    ) -> torch.Tensor:
        """Keep each pixel's previous bin while it stays within the hysteresis margin of it."""
        assert self._masks is not None
        r = self.regions
        level = dcp.normalised_transmission(t, low, high)
        previous = self._masks.argmax(dim=1, keepdim=True)
        bin_low = (r - 1 - previous).float() / r
        bin_high = (r - previous).float() / r
        margin = self.params.hysteresis
        keep = (level >= bin_low - margin) & (level <= bin_high + margin) & ~cut
        return torch.where(keep, self._masks, masks)
