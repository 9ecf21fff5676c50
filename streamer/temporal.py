"""Temporal steadying of video, one state per stream: HDM's DCP region masks, and the output.

Per-frame masks flicker on video: the airlight is re-estimated from a 0.1% percentile and the
transmission is min-max normalised per frame, so a small dark object entering a corner moves the
bins of the whole frame. The smoother keeps an exponential moving average of the airlight and of
the normalisation range, holds hard bins until a pixel leaves its bin by a margin (hysteresis),
averages soft masks over time, and resets everything on a scene cut.

Steady masks are not enough: most of the flicker an enhancer adds is its response to sensor
noise and compression, which changes every frame. The output stabiliser therefore works on the
picture itself: where the input has not changed beyond noise, the output leans on the previous
stabilised output (a recursive average); where it has, it takes the new output as it is, so
moving things do not leave trails; a scene cut starts afresh.

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

__all__ = ["MaskSmoother", "OutputStabiliser", "SmoothingParams", "StabiliserParams"]

_THUMBNAIL = (18, 32)
# The motion weights are found at half resolution (a 3×3 mean of the signed change there is
# about a 6×6 window; the per-pixel test takes each 2×2 block's largest change) and applied at
# full resolution: on a CPU a full-resolution 5×5 mean alone cost 80 ms per 1080p frame.
_CHANGE_WINDOW = 3


def _thumbnails(grey: torch.Tensor) -> torch.Tensor:
    """18×32 thumbnails of B×1×H×W grey frames, for scene-cut detection."""
    return F.adaptive_avg_pool2d(grey, _THUMBNAIL)

def _is_cut(previous: torch.Tensor | None, thumbnail: torch.Tensor, threshold: float
            ) -> torch.Tensor:
    """A 0-d bool tensor (no host sync): no history, a new size, or a scene cut."""
    if previous is None or previous.shape != thumbnail.shape:
        return torch.ones((), dtype=torch.bool, device=thumbnail.device)
    return (thumbnail - previous).abs().mean() > threshold


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

    def __post_init__(self) -> None:
        _check_unit("alpha", self.alpha, zero=False)
        _check_unit("hysteresis", self.hysteresis)
        _check_unit("scene_cut", self.scene_cut, zero=False)


def _check_unit(name: str, value: float, *, zero: bool = True) -> None:
    low_ok = value >= 0 if zero else value > 0
    if not (low_ok and value <= 1):
        raise ValueError(f"{name} must be in {'[0' if zero else '(0'}, 1], got {value}")


@dataclass(frozen=True)
class StabiliserParams:
    """Args:
    enabled: stabilise the output at all (off: every frame as the model gives it).
    static_weight: weight of the newest output where the input has not changed (0.05: noise the
        model adds falls to a sixth; a change too slow to see from one frame to the next is
        followed within ~20 frames).
    noise_levels: local mean change of the input (8-bit grey levels, signed, about 6×6 pixels)
        still taken for noise; sensor noise averages out in the window, a moving surface does not.
    motion_levels: local mean change from which the newest output is taken as it is.
    pixel_levels: change of one pixel from which it counts as moving whatever its neighbours
        do (fine texture moving cancels in the window mean); half of it still counts as noise.
    scene_cut: mean absolute difference of grey thumbnails above which the history is dropped.
    """

    enabled: bool = True
    static_weight: float = 0.05
    noise_levels: float = 1.5
    motion_levels: float = 4.0
    pixel_levels: float = 8.0
    scene_cut: float = 0.12

    def __post_init__(self) -> None:
        _check_unit("static_weight", self.static_weight, zero=False)
        _check_unit("scene_cut", self.scene_cut, zero=False)
        if not 0 <= self.noise_levels < self.motion_levels <= 255:
            raise ValueError("need 0 <= noise_levels < motion_levels <= 255, got "
                             f"{self.noise_levels} and {self.motion_levels}")
        if not 0 < self.pixel_levels <= 255:
            raise ValueError(f"pixel_levels must be in (0, 255], got {self.pixel_levels}")


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
        thumbnails = _thumbnails(dcp.grey(x.float()))
        out = []
        for i in range(count):
            out.append(self._step(refined[i : i + 1], measured[i], thumbnails[i : i + 1]))
        return torch.cat(out)

    def _step(
        self, refined: torch.Tensor, measured: dcp.DCPStats, thumbnail: torch.Tensor
    ) -> torch.Tensor:
        alpha = self.params.alpha
        resized = self._thumbnail is None or self._thumbnail.shape != thumbnail.shape
        cut = _is_cut(self._thumbnail, thumbnail, self.params.scene_cut)
        if resized:
            self.reset()
        else:
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


class OutputStabiliser:
    """The enhanced frames of one stream, steadied where the input stands still."""

    def __init__(self, params: StabiliserParams = StabiliserParams()) -> None:
        self.params = params
        # The previous input, grey, 1×1×H×W. (Comparing with an input averaged like the output
        # instead lets slow drift show, but then the output follows every sub-noise change the
        # model amplifies: flicker on the shared clips rose 10-25%.)
        self._grey: torch.Tensor | None = None
        self._output: torch.Tensor | None = None  # previous stabilised output, 1×3×H×W
        self._thumbnail: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, out: torch.Tensor, count: int | None = None
                 ) -> torch.Tensor:
        """Stabilised ``out`` (B×3×H×W float in [0, 1]) for the inputs ``x`` (same shape,
        consecutive frames); frames past ``count`` (padding) pass through, unremembered."""
        count = x.shape[0] if count is None else count
        if not self.params.enabled or count == 0:
            return out
        x, out = x.float(), out.float()
        greys = dcp.grey(x)
        thumbnails = _thumbnails(greys)
        steadied = [self._step(greys[i : i + 1], out[i : i + 1], thumbnails[i : i + 1])
                    for i in range(count)]
        return torch.cat([*steadied, out[count:]])

    def _step(self, grey: torch.Tensor, out: torch.Tensor, thumbnail: torch.Tensor
              ) -> torch.Tensor:
        p = self.params
        cut = _is_cut(self._thumbnail, thumbnail, p.scene_cut)
        if self._grey is None or self._output is None or self._output.shape != out.shape:
            steady = out
        else:
            change = (grey - self._grey) * 255
            local = F.avg_pool2d(F.avg_pool2d(change, 2, ceil_mode=True), _CHANGE_WINDOW,
                                 stride=1, padding=_CHANGE_WINDOW // 2, count_include_pad=False)
            peak = F.max_pool2d(change.abs(), 2, ceil_mode=True)
            moving = torch.maximum(
                (local.abs() - p.noise_levels) / (p.motion_levels - p.noise_levels),
                peak / (p.pixel_levels / 2) - 1,
            ).clamp(p.static_weight, 1.0)
            weight = F.interpolate(torch.where(cut, 1.0, moving), size=out.shape[-2:],
                                   mode="nearest")
            steady = torch.lerp(self._output, out, weight)
        self._grey, self._output, self._thumbnail = grey, steady, thumbnail
        return steady
