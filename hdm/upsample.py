"""Carry an enhancement made at low resolution to the full-resolution frame.

The network runs on a small copy of the frame; what it did there is fitted as a local affine
colour transform of the small input (He et al.'s guided filter, ECCV 2010, used as in the fast
guided filter / Deep Guided Filter, Wu et al. CVPR 2018), and that transform, upsampled, is
applied to the full-resolution input. Haze removal is exactly such a transform per pixel
(J = (I - A) / t + A, with t smooth), and so is a low-light gain, so the full frame keeps its own
detail and edges while taking the network's colour and contrast.

The same fit in wide windows also cleans a dehazed picture at full size (``fit_to_input``):
the network's output is replaced by its local affine fit on the hazy input in windows whose
radius is 1/32 of the picture's longer side. Haze removal with a transmission that is smooth
over such a window is exactly that transform, so recovered contrast and edges stay; what the
input does not hold cannot: the soft dark patches HDM painted into skies and flat walls (see
the README's "What a viewer sees" for what it changed on ``hdm-stream eval``'s sets).

Two fits:

* ``channel``: each output channel an affine function of the same input channel (6
  coefficients per pixel).
* ``colour``: each output channel an affine function of all three input channels (12
  coefficients, a 3×3 matrix and an offset per pixel): it also carries the network's colour
  mixing (white balance, casts removed), at a 3×3 solve per low-resolution pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hdm.errors import ConfigError

__all__ = ["FITS", "FIT_WINDOW_BY_TASK", "AffineField", "Fit", "FittedToInput", "apply_field",
           "describe_window", "enhance_reduced", "fit_field", "fit_to_input", "reduced_size"]

Fit = Literal["channel", "colour"]
FITS: tuple[Fit, ...] = get_args(Fit)
FIT_WINDOW_BY_TASK: dict[str, float] = {"dehaze": 1 / 32}
"""The wide-window fit each task's HDM output gets (its radius, a fraction of the picture's
longer side).
Not rain, whose streaks are in the input and must not be fitted back; not low light, whose
network removes the sensor noise that an affine gain of the input would amplify again."""
_FIT_SIDE = 512  # the wide-window fit is made on a copy this long at most (fast guided filter)
FIT_EPS = 1e-5  # the wide fit's regulariser: a window of 1 level's contrast keeps 60% of its gain

AffineField = torch.Tensor
"""B×(K·3)×h×w low-resolution coefficients: ``channel`` fits hold a gain per channel, then an
offset per channel (K = 2); ``colour`` fits a 3×3 matrix (channel 3i + o takes input channel i
into output o), then an offset per output channel (K = 4)."""


def reduced_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the shorter side ``short_side`` (never larger than the frame), the aspect
    kept, each at least 1."""
    short = min(height, width)
    if short_side >= short:
        return height, width
    scale = short_side / short
    return max(1, round(height * scale)), max(1, round(width * scale))


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)² window clipped to the picture. On a CPU, without gradients,
    through OpenCV's running-sum box filter (12 channels at 171x96: 0.14 ms, against 3.4 ms
    for torch's pooling on 2 cores); otherwise one pooling call."""
    size = 2 * radius + 1
    if x.device.type != "cpu" or x.requires_grad or x.dtype != torch.float32:
        return F.avg_pool2d(x, size, stride=1, padding=radius, count_include_pad=False)
    height, width = x.shape[-2:]
    window = (size, size)
    counts = cv2.boxFilter(np.ones((height, width), np.float32), -1, window, normalize=False,
                           borderType=cv2.BORDER_CONSTANT)[..., None]
    frames = [cv2.boxFilter(np.ascontiguousarray(frame.permute(1, 2, 0).numpy()), -1, window,
                            normalize=False, borderType=cv2.BORDER_CONSTANT).reshape(
                                height, width, -1) / counts
              for frame in x]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def fit_field(guide: torch.Tensor, out: torch.Tensor, *, fit: Fit = "colour", radius: int = 2,
              eps: float = 1e-4) -> AffineField:
    """Local affine coefficients taking ``guide`` (B×3×h×w input) to ``out`` (its enhanced
    version) in (2r+1)² windows, averaged over the windows that cover each pixel.

    ``eps`` regularises flat windows towards a pure offset (a larger one smooths more); it is in
    squared [0, 1] units.
    """
    if fit not in FITS:
        raise ConfigError(f"fit must be one of {FITS}, got {fit!r}")
    return _solve(_box(_moments(guide.float(), out.float(), fit, lambda t: t), radius), fit,
                  radius, eps)


def _moments(guide: torch.Tensor, out: torch.Tensor, fit: Fit,
             shrink: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The per-pixel values whose window means the fit needs, each shrunk as it is made (so at
    most one full-size product exists at a time): the guide, the output, then the guide's
    squares and guide × output (``channel``), or the guide's 3×3 products and the 3×3 products
    of output and guide channels (``colour``, channel 3o + i: output o times guide i)."""
    parts = [shrink(guide), shrink(out)]
    if fit == "channel":
        parts += [shrink(guide * guide), shrink(guide * out)]
    else:
        parts += [shrink(guide * guide[:, i : i + 1]) for i in range(3)]
        parts += [shrink(guide * out[:, o : o + 1]) for o in range(3)]
    return torch.cat(parts, 1)


def _solve(means: torch.Tensor, fit: Fit, radius: int, eps: float,
           shared_gain: bool = False) -> AffineField:
    """The field from the window means of :func:`_moments` (``shared_gain``: the first
    channel's gain for all three, each with its own offset)."""
    if fit == "channel":
        mean_i, mean_p, mean_ii, mean_ip = means.split(3, 1)
        var = mean_ii - mean_i * mean_i
        cov = mean_ip - mean_i * mean_p
        gain = cov / (var + eps)
        if shared_gain:
            gain = gain[:, :1].expand_as(mean_i)
        offset = mean_p - gain * mean_i
        return _box(torch.cat([gain, offset], 1), radius)
    mean_i, mean_p, products, cross = means.split([3, 3, 9, 9], 1)
    b, _, h, w = mean_i.shape
    # Covariances of the guide's channels (3×3) and of the output's with them (3×3), per pixel.
    sigma = products - (mean_i.unsqueeze(1) * mean_i.unsqueeze(2)).reshape(b, 9, h, w)
    cross = cross - (mean_p.unsqueeze(2) * mean_i.unsqueeze(1)).reshape(b, 9, h, w)
    sigma = sigma.permute(0, 2, 3, 1).reshape(b, h, w, 3, 3)
    sigma = sigma + eps * torch.eye(3, device=means.device, dtype=means.dtype)
    cross = cross.permute(0, 2, 3, 1).reshape(b, h, w, 3, 3)  # [output channel, input channel]
    # matrix @ sigma = cross  <=>  sigma @ matrix^T = cross^T (sigma is symmetric)
    matrix = torch.linalg.solve(sigma, cross.transpose(-1, -2)).transpose(-1, -2)
    offset = mean_p - torch.einsum("bhwoi,bihw->bohw", matrix, mean_i)
    # Stored by input channel (channel 3i + o: input i into output o), so that applying it
    # reads three contiguous 3-channel slices.
    field = torch.cat([matrix.permute(0, 4, 3, 1, 2).reshape(b, 9, h, w), offset], 1)
    return _box(field, radius)


def apply_field(field: AffineField, x: torch.Tensor) -> torch.Tensor:
    """The coefficients upsampled (bilinear) to ``x``'s size and applied to it (B×3×H×W)."""
    if field.shape[-2:] != x.shape[-2:]:
        field = F.interpolate(field, size=x.shape[-2:], mode="bilinear", align_corners=False)
    field = field.to(x.dtype)
    if field.shape[1] == 6:
        return torch.addcmul(field[:, 3:], field[:, :3], x)
    # Three broadcast multiply-adds, never a 9-channel full-resolution temporary.
    out = field[:, 9:]
    for i in range(3):
        out = torch.addcmul(out, field[:, 3 * i : 3 * i + 3], x[:, i : i + 1])
    return out


def describe_window(window: float) -> str:
    """A fit window as people write it: ``1/32``, or ``0.3`` where it is no 1/N."""
    inverse = 1 / window
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-6 else f"{window:g}"


def fit_to_input(x: torch.Tensor, out: torch.Tensor, *, window: float, fit: Fit = "channel",
                 eps: float = FIT_EPS, shared_gain: bool = False) -> AffineField:
    """The field taking ``x`` (B×3×H×W) to ``out`` (its enhanced version, same size) in
    windows whose radius is ``window`` times the picture's longer side: apply it to ``x``
    (:func:`apply_field`) for the output the input can explain. The window means are taken at
    full resolution and shrunk to at most 512 pixels long, where the windows are averaged (so
    the fine texture of a large frame still counts in its window's variance).
    ``shared_gain`` (channel fit): one gain, the first channel's, for all three, as haze has in
    Y'CbCr (a per-channel fit there would flatten the chroma, whose variance is small)."""
    if not 0 < window <= 0.5:
        raise ConfigError(f"the fit window must be in (0, 0.5] of the picture, got {window}")
    if fit not in FITS:
        raise ConfigError(f"fit must be one of {FITS}, got {fit!r}")
    height, width = x.shape[-2:]
    scale = min(1.0, _FIT_SIDE / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))

    def shrink(t: torch.Tensor) -> torch.Tensor:
        return t if scale == 1.0 else F.interpolate(t, size=size, mode="area")

    radius = max(1, round(window * max(size)))
    means = _box(_moments(x.float(), out.float(), fit, shrink), radius)
    return _solve(means, fit, radius, eps, shared_gain)


class FittedToInput(nn.Module):
    """``model`` with its output fitted to its input (:func:`fit_to_input`): how the engine
    runs a task of :data:`FIT_WINDOW_BY_TASK`, for evaluation and the Python API."""

    def __init__(self, model: nn.Module, window: float, fit: Fit = "channel") -> None:
        super().__init__()
        self.model, self.window, self.fit = model, window, fit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        field = fit_to_input(x, out, window=self.window, fit=self.fit)
        return apply_field(field, x).clamp(0.0, 1.0)


def enhance_reduced(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    scale: float, *, fit: Fit = "channel") -> torch.Tensor:
    """``model`` run on ``x`` (B×3×H×W) scaled by ``scale``, its effect fitted back to ``x``:
    the engine's reduced path without its temporal filters, for training and evaluation."""
    height, width = x.shape[-2:]
    size = (max(8, round(height * scale)), max(8, round(width * scale)))
    small = F.interpolate(x, size=size, mode="area")
    return apply_field(fit_field(small, model(small), fit=fit), x)
