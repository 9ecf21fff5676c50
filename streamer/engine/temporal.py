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

The smoother and the stabiliser hold settings only; what they remember of a stream lives in
its :class:`TemporalState`, which the stream's session owns and hands in with each frame. A batch
may mix streams: each frame is stepped against its own stream's state, in order (the DCP
estimate itself runs once over the whole batch). All state stays on the device and is updated
with tensor ops only, so smoothing never waits for the GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from hdm import dcp
from hdm.dcp import DCPParams, MaskMode
from streamer.engine.motion import CameraTrack, Motion, warp
from streamer.errors import ConfigError

__all__ = [
    "Estimate", "MaskSmoother", "MaskState", "OutputStabiliser", "SmoothingParams",
    "StabiliserParams", "StabiliserState", "TaskMemory", "TemporalState",
]

_THUMBNAIL = (18, 32)
# The motion weights are found at half resolution (a 3×3 mean of the signed change there is
# about a 6×6 window; the per-pixel test takes each 2×2 block's largest change) and applied at
# full resolution: on a CPU a full-resolution 5×5 mean alone cost 80 ms per 1080p frame.
_CHANGE_WINDOW = 3


def _thumbnails(grey: torch.Tensor) -> torch.Tensor:
    """18×32 thumbnails of B×1×H×W grey frames, for scene-cut detection."""
    return F.adaptive_avg_pool2d(grey, _THUMBNAIL)


class Estimate(Protocol):
    """``hdm.dcp.estimate`` or a compiled version of it: the refined dark channel of a batch
    and its per-frame statistics."""

    def __call__(self, x: torch.Tensor, *, lowlight: bool, params: DCPParams
                 ) -> tuple[torch.Tensor, dcp.DCPStats]: ...


@dataclass
class MaskState:
    """What the mask smoother remembers of one stream (all on the device)."""

    airlight: torch.Tensor | None = None
    range: tuple[torch.Tensor, torch.Tensor] | None = None
    masks: torch.Tensor | None = None
    thumbnail: torch.Tensor | None = None
    cuts: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.int64))

    def forget(self) -> None:
        """Drop the history (a new frame size); the scene-cut count is kept."""
        self.airlight = self.range = self.masks = self.thumbnail = None


@dataclass
class StabiliserState:
    """What the output stabiliser remembers of one stream: the previous input (grey,
    1×1×H×W), the previous stabilised output (1×3×H×W) and its thumbnail. (Comparing with an
    input averaged like the output instead lets slow drift show, but then the output follows
    every sub-noise change the model amplifies: flicker on the shared clips rose 10-25%.)"""

    grey: torch.Tensor | None = None
    output: torch.Tensor | None = None
    thumbnail: torch.Tensor | None = None


@dataclass
class TaskMemory:
    """What ``--task auto`` remembers of a stream (engine/scene.py): the task it runs, the one
    its pictures have asked for instead and for how many frames in a row, the frames each task
    enhanced, and a temporal state per task (each model's masks and output are its own)."""

    current: str | None = None
    asked: str | None = None
    asked_frames: int = 0
    switches: int = 0
    frames: dict[str, int] = field(default_factory=dict)
    states: dict[str, TemporalState] = field(default_factory=dict)


@dataclass
class TemporalState:
    """One stream's temporal memory; consecutive frames of a stream share one."""

    masks: MaskState = field(default_factory=MaskState)
    output: StabiliserState = field(default_factory=StabiliserState)
    camera: CameraTrack = field(default_factory=CameraTrack)
    task: TaskMemory = field(default_factory=TaskMemory)

    @property
    def scene_cuts(self) -> int:
        """Scene cuts seen so far (reads the device: call it at the end, not per frame)."""
        return int(self.masks.cuts) + sum(s.scene_cuts for s in self.task.states.values())

M = TypeVar("M")


def _followed(motions: Sequence[M | None], count: int, follow: bool) -> list[M | None]:
    """One motion per frame (None past the given ones): ``motions``, or none at all when the
    filter does not follow the camera."""
    moved: list[M | None] = list(motions) if follow else []
    return moved + [None] * (count - len(moved))


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
    follow_camera: move the averaged masks with the camera (pan, tilt, zoom, roll; see
        motion.py) before averaging (off: they stay put, and trail on a moving camera).
    """

    enabled: bool = True
    alpha: float = 0.1
    hysteresis: float = 0.04
    scene_cut: float = 0.12
    follow_camera: bool = True

    def __post_init__(self) -> None:
        _check_unit("alpha", self.alpha, zero=False)
        _check_unit("hysteresis", self.hysteresis)
        _check_unit("scene_cut", self.scene_cut, zero=False)


def _check_unit(name: str, value: float, *, zero: bool = True) -> None:
    low_ok = value >= 0 if zero else value > 0
    if not (low_ok and value <= 1):
        raise ConfigError(f"{name} must be in {'[0' if zero else '(0'}, 1], got {value}")


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
    follow_camera: move the previous input and output with the camera before comparing and
        blending (see motion.py; off: a pan over flat regions leaves trails).
    camera_weight: ``static_weight`` while the camera moves: each frame's resampling of the
        history softens it a little, so it is leant on less (benchmarks/bench_ghosting.py).
    """

    enabled: bool = True
    static_weight: float = 0.05
    noise_levels: float = 1.5
    motion_levels: float = 4.0
    pixel_levels: float = 8.0
    scene_cut: float = 0.12
    follow_camera: bool = True
    camera_weight: float = 0.3

    def __post_init__(self) -> None:
        _check_unit("static_weight", self.static_weight, zero=False)
        _check_unit("camera_weight", self.camera_weight, zero=False)
        _check_unit("scene_cut", self.scene_cut, zero=False)
        if not 0 <= self.noise_levels < self.motion_levels <= 255:
            raise ConfigError("need 0 <= noise_levels < motion_levels <= 255, got "
                             f"{self.noise_levels} and {self.motion_levels}")
        if not 0 < self.pixel_levels <= 255:
            raise ConfigError(f"pixel_levels must be in (0, 255], got {self.pixel_levels}")


class MaskSmoother:
    """Masks for frames of video, each steadied against its stream's earlier frames."""

    def __init__(
        self,
        *,
        regions: int,
        mode: MaskMode,
        lowlight: bool,
        params: SmoothingParams = SmoothingParams(),
        dcp_params: DCPParams = DCPParams(),
        estimate: Estimate = dcp.estimate,
    ) -> None:
        self.regions = regions
        self.mode = mode
        self.lowlight = lowlight
        self.params = params
        self.dcp_params = dcp_params
        self.estimate = estimate

    def __call__(self, x: torch.Tensor, states: Sequence[MaskState],
                 motions: Sequence[np.ndarray | None] = ()) -> torch.Tensor:
        """Masks len(states)×R×H/4×W/4 for the first len(states) frames of the batch ``x``
        (B×3×H×W, H and W multiples of 4); frame i is smoothed with ``states[i]`` (frames of one
        stream in order), its history first brought forward by ``motions[i]`` (the camera's
        motion in mask pixels, see motion.py; none: a still camera). Frames past them (padding
        for a compiled batch size) are estimated with the rest but neither returned nor
        remembered."""
        count = len(states)
        refined, measured = self.estimate(x, lowlight=self.lowlight, params=self.dcp_params)
        if not self.params.enabled:
            t = dcp.transmission(refined, measured.airlight, self.dcp_params.omega)
            masks = dcp.region_masks(t, measured.t_low, measured.t_high, regions=self.regions,
                                     mode=self.mode)
            return masks[:count]
        thumbnails = _thumbnails(dcp.grey(x.float()))
        moved = _followed(motions, count, self.params.follow_camera)
        out = [self._step(state, refined[i : i + 1], measured[i], thumbnails[i : i + 1],
                          moved[i])
               for i, state in enumerate(states)]
        return torch.cat(out)

    def _step(
        self, state: MaskState, refined: torch.Tensor, measured: dcp.DCPStats,
        thumbnail: torch.Tensor, motion: np.ndarray | None = None,
    ) -> torch.Tensor:
        alpha = self.params.alpha
        resized = state.thumbnail is None or state.thumbnail.shape != thumbnail.shape
        cut = _is_cut(state.thumbnail, thumbnail, self.params.scene_cut)
        if resized:
            state.forget()
        else:
            state.cuts = state.cuts.to(cut.device) + cut.long()
        state.thumbnail = thumbnail
        weight = torch.where(cut, torch.ones_like(measured.airlight), alpha)

        airlight = measured.airlight if state.airlight is None else torch.lerp(
            state.airlight, measured.airlight, weight
        )
        t = dcp.transmission(refined, airlight, self.dcp_params.omega)
        low, high = dcp.transmission_range(t)
        if state.range is not None:
            low = torch.lerp(state.range[0], low, weight)
            high = torch.lerp(state.range[1], high, weight)
        state.airlight, state.range = airlight, (low, high)

        masks = dcp.region_masks(t, low, high, regions=self.regions, mode=self.mode)
        if state.masks is not None and state.masks.shape == masks.shape:
            if motion is not None:
                state.masks = warp(state.masks, motion,
                                   interpolation="nearest" if self.mode == "hard" else "linear")
            if self.mode == "hard":
                masks = self._hold_bins(state.masks, t, low, high, masks, cut)
            else:
                masks = torch.lerp(state.masks, masks, weight.view(1, 1, 1, 1))
        state.masks = masks
        return masks

    def _hold_bins(
        self,
        previous_masks: torch.Tensor,
        t: torch.Tensor,
        low: torch.Tensor,
        high: torch.Tensor,
        masks: torch.Tensor,
        cut: torch.Tensor,
    ) -> torch.Tensor:
        """Keep each pixel's previous bin while it stays within the hysteresis margin of it."""
        r = self.regions
        level = dcp.normalised_transmission(t, low, high)
        previous = previous_masks.argmax(dim=1, keepdim=True)
        bin_low = (r - 1 - previous).float() / r
        bin_high = (r - previous).float() / r
        margin = self.params.hysteresis
        keep = (level >= bin_low - margin) & (level <= bin_high + margin) & ~cut
        return torch.where(keep, previous_masks, masks)


class OutputStabiliser:
    """Enhanced frames of video, steadied where the input stands still."""

    def __init__(self, params: StabiliserParams = StabiliserParams()) -> None:
        self.params = params

    def __call__(self, x: torch.Tensor, out: torch.Tensor, states: Sequence[StabiliserState],
                 motions: Sequence[Motion | None] = ()) -> torch.Tensor:
        """Stabilised ``out`` (B×3×H×W float in [0, 1]) for the inputs ``x`` (same shape, or
        the small frame of a reduced inference size: motion is judged there, cheaply, and the
        full output steadied with the judgement upsampled);
        frame i is steadied with ``states[i]``, its history first brought forward by
        ``motions[i]`` (the camera's, see motion.py; none: a still camera); frames past
        len(states) (padding) pass through, unremembered."""
        count = len(states)
        if not self.params.enabled or count == 0:
            return out
        out = out.float()
        shape = (1, *out.shape[1:])
        # From half the input's size, nearest suffices; from a reduced inference size (the
        # input is the small frame, the output the full one) it would draw blocks.
        mode = "bilinear" if out.shape[-1] > 2 * x.shape[-1] else "nearest"
        steadied = []
        moved = self.followed(motions, count)
        for i, state in enumerate(states):  # in order: a batch may hold a stream's next frames
            steady = out[i : i + 1]
            motion = moved[i]
            weight = self.blend_weight(x[i : i + 1], state, shape, motion)
            if weight is not None and state.output is not None and motion is not None:
                state.output = warp(state.output, motion.for_size(*out.shape[-2:]),
                                    interpolation="cubic")
            if weight is not None and state.output is not None:
                weight = F.interpolate(weight, size=out.shape[-2:], mode=mode)
                steady = torch.lerp(state.output, steady, weight)
            state.output = steady
            steadied.append(steady)
        if count == out.shape[0] == 1:
            return steadied[0]  # no copy of a full frame for nothing
        return torch.cat([*steadied, out[count:]])

    def followed(self, motions: Sequence[Motion | None], count: int) -> list[Motion | None]:
        """The motion each of ``count`` frames' history is brought forward by."""
        return _followed(motions, count, self.params.follow_camera)

    def blend_weight(self, x: torch.Tensor, state: StabiliserState,
                     output_shape: tuple[int, ...], motion: Motion | None = None
                     ) -> torch.Tensor | None:
        """How much of a frame's new output to take, for its input ``x`` (1×3×h×w): 1×1 at
        half ``x``'s size, 1 where the input moved or on a scene cut, down to
        ``static_weight`` where it stood still; None where the stream holds no earlier output
        of ``output_shape`` to lean on. With ``motion``, the previous input is compared where
        the camera brought it, and what came into view is taken new (weight 1). Remembers the
        frame's grey and thumbnail; the caller brings its stored output forward by the same
        motion, blends, and stores the output (a tensor of ``output_shape``) before the next
        frame."""
        grey = dcp.grey(x.float())
        return self._weight(state, grey, _thumbnails(grey), output_shape, motion)

    def _weight(self, state: StabiliserState, grey: torch.Tensor, thumbnail: torch.Tensor,
                output_shape: tuple[int, ...], motion: Motion | None) -> torch.Tensor | None:
        p = self.params
        cut = _is_cut(state.thumbnail, thumbnail, p.scene_cut)
        weight = None
        if (state.grey is not None and state.grey.shape == grey.shape
                and state.output is not None and tuple(state.output.shape) == output_shape):
            previous, unseen = state.grey, None
            if motion is not None:
                matrix = motion.for_size(*grey.shape[-2:])
                previous = warp(state.grey, matrix)
                seen = warp(torch.ones_like(grey), matrix, border="zeros")
                unseen = F.max_pool2d(1 - seen, 2, ceil_mode=True) > 0.01
            change = (grey - previous) * 255
            local = F.avg_pool2d(F.avg_pool2d(change, 2, ceil_mode=True), _CHANGE_WINDOW,
                                 stride=1, padding=_CHANGE_WINDOW // 2, count_include_pad=False)
            peak = F.max_pool2d(change.abs(), 2, ceil_mode=True)
            moving = torch.maximum(
                (local.abs() - p.noise_levels) / (p.motion_levels - p.noise_levels),
                peak / (p.pixel_levels / 2) - 1,
            ).clamp(p.static_weight if motion is None else p.camera_weight, 1.0)
            weight = torch.where(cut, 1.0, moving)
            if unseen is not None:
                weight = torch.where(unseen, 1.0, weight)
        state.grey, state.thumbnail = grey, thumbnail
        return weight
