"""The reduced path for I420 frames on a CPU, with no RGB frame at full resolution.

The network still sees RGB, but only on the small copy: each plane is area-averaged to the
inference size, and that small Y, U, V is converted. What the network did is then fitted as a
per-channel affine map of the small Y, U and V, and the map, upsampled, is applied to the
frame's own planes, which go on to the encoder as they came. That spares swscale's conversion to
RGB on the decode thread and back to YUV on the encode thread, and every full-resolution step
touches 1.5 samples a pixel (4:2:0) instead of RGB's 3, in 8 bits until the fit.

Why the fit holds in YUV: a haze model's J = I/t + A(1 - 1/t), and a low-light gain, scale all
three channels by one gain, and the YUV matrix is linear, so Y, U and V see that same gain with
offsets of their own. The colour fit (3×3, derain's) needs the three channels at one
resolution, so it stays on the RGB path.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from hdm.upsample import AffineField
from streamer.engine.colour import split_planes
from streamer.engine.motion import Motion, warp
from streamer.engine.temporal import OutputStabiliser, StabiliserState

__all__ = ["expand_planes", "plane_views", "quantise_planes", "shrink_planes"]


def plane_views(planes: np.ndarray) -> tuple[np.ndarray, ...]:
    """The Y, U and V planes of a (3H/2)×W I420 array, as views."""
    return tuple(p[0, 0].numpy() for p in split_planes(torch.from_numpy(planes)[None]))


def shrink_planes(frames: Sequence[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """B×3×h×w float Y, U and V code values of I420 frames, each plane area-averaged to
    ``size`` (h, w)."""
    height, width = size
    small = np.empty((len(frames), 3, height, width), np.float32)
    for out, frame in zip(small, frames, strict=True):
        for k, plane in enumerate(plane_views(frame)):
            out[k] = cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(small)


def _upsampled(channels: Sequence[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Low-resolution Y, U and V coefficients, bilinearly upsampled into one float array laid
    out as an I420 frame of ``shape`` (each written in place into its plane)."""
    out = np.empty(shape, np.float32)
    for channel, plane in zip(channels, plane_views(out), strict=True):
        cv2.resize(np.ascontiguousarray(channel), (plane.shape[1], plane.shape[0]), dst=plane,
                   interpolation=cv2.INTER_LINEAR)
    return out


def expand_planes(field: AffineField, frames: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """A per-channel ``field`` (B×6×h×w: Y, U, V gains, then offsets, fitted on code values
    / 255) applied to each frame's full-resolution planes: float code values in I420 layout,
    clamped to [0, 255]."""
    results = []
    for coefficients, frame in zip(field.float().numpy(), frames, strict=True):
        result = torch.from_numpy(_upsampled(coefficients[3:] * 255.0, frame.shape))
        gain = torch.from_numpy(_upsampled(coefficients[:3], frame.shape))
        results.append(result.addcmul_(gain, torch.from_numpy(frame)).clamp_(0.0, 255.0))
    return results


def _warped(planes: torch.Tensor, motion: Motion) -> torch.Tensor:
    """Float planes in I420 layout brought forward by the camera's ``motion``, plane by
    plane."""
    out = torch.empty_like(planes)
    for source, target in zip(split_planes(planes[None]), split_planes(out[None]), strict=True):
        target[0, 0] = warp(source[0], motion.for_size(*source.shape[-2:]),
                            interpolation="cubic")[0]
    return out


def quantise_planes(stabiliser: OutputStabiliser, small: torch.Tensor,
                    planes: Sequence[torch.Tensor], states: Sequence[StabiliserState],
                    motions: Sequence[Motion | None]) -> list[np.ndarray]:
    """Each frame's float planes steadied against its stream's last output (brought forward
    by the camera's motion; change judged on ``small``, its RGB input at the inference size)
    and rounded to uint8 I420."""
    results = []
    moved = stabiliser.followed(motions, len(planes))
    for i, (out, state, motion) in enumerate(zip(planes, states, moved, strict=True)):
        if stabiliser.params.enabled:
            shape = (1, *out.shape)
            weight = stabiliser.blend_weight(small[i : i + 1], state, shape, motion)
            if weight is not None and state.output is not None:
                if motion is not None:
                    state.output = _warped(state.output[0], motion)[None]
                coarse = weight[0, 0].numpy()
                out = torch.lerp(state.output[0], out,
                                 torch.from_numpy(_upsampled([coarse] * 3, out.shape)))
            state.output = out[None]
        results.append(cv2.convertScaleAbs(out.numpy()))  # rounds half to even, as torch
    return results
