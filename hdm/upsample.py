"""Carry an enhancement made at low resolution to the full-resolution frame.

The network runs on a small copy of the frame; what it did there is fitted as a local affine
colour transform of the small input (He et al.'s guided filter, ECCV 2010, used as in the fast
guided filter / Deep Guided Filter, Wu et al. CVPR 2018), and that transform, upsampled, is
applied to the full-resolution input. Haze removal is exactly such a transform per pixel
(J = (I - A) / t + A, with t smooth), and so is a low-light gain, so the full frame keeps its own
detail and edges while taking the network's colour and contrast.

The same fit over wide windows also cleans a dehazed picture at full size (``fit_to_input``):
the network's output is replaced by its local affine fit on the hazy input over windows of 1/32
of the picture's longer side. Haze removal with a transmission that is smooth over such a
window is exactly that transform, so recovered contrast and edges stay; what the input does not
hold cannot: the soft dark patches HDM painted into skies and flat walls (blotches on the 16
real hazy photos of ``hdm-stream eval``: 2.05% -> 1.01%, against the classical's 1.72%; O-HAZE
#35 21.08 -> 21.65 dB).

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
           "enhance_reduced", "fit_field", "fit_to_input", "reduced_size"]

Fit = Literal["channel", "colour"]
FITS: tuple[Fit, ...] = get_args(Fit)
FIT_WINDOW_BY_TASK: dict[str, float] = {"dehaze": 1 / 32}
"""The wide-window fit each task's HDM output gets (a fraction of the picture's longer side).
Not rain, whose streaks are in the input and must not be fitted back; not low light, whose
network removes the sensor noise that an affine gain of the input would amplify again."""
_FIT_SIDE = 512  # the wide-window fit is made on a copy this long at most (fast guided filter)

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
    guide, out = guide.float(), out.float()
    if fit == "channel":
        # One pooling call for the four window means.
        means = _box(torch.cat([guide, out, guide * guide, guide * out], 1), radius)
        mean_i, mean_p, mean_ii, mean_ip = means.split(3, 1)
        var = mean_ii - mean_i * mean_i
        cov = mean_ip - mean_i * mean_p
        gain = cov / (var + eps)
        offset = mean_p - gain * mean_i
        return _box(torch.cat([gain, offset], 1), radius)
    b, _, h, w = guide.shape
    mean_i, mean_p = _box(guide, radius), _box(out, radius)
    # Covariances of the guide's channels (3×3) and with the output's (3×3), per pixel.
    products = (guide.unsqueeze(1) * guide.unsqueeze(2)).reshape(b, 9, h, w)
    sigma = _box(products, radius) - (mean_i.unsqueeze(1) * mean_i.unsqueeze(2)).reshape(b, 9, h, w)
    cross = (out.unsqueeze(2) * guide.unsqueeze(1)).reshape(b, 9, h, w)
    cross = _box(cross, radius) - (mean_p.unsqueeze(2) * mean_i.unsqueeze(1)).reshape(b, 9, h, w)
    sigma = sigma.permute(0, 2, 3, 1).reshape(b, h, w, 3, 3)
    sigma = sigma + eps * torch.eye(3, device=guide.device, dtype=guide.dtype)
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


def fit_to_input(x: torch.Tensor, out: torch.Tensor, *, window: float, fit: Fit = "channel",
                 eps: float = 1e-4) -> AffineField:
    """The field taking ``x`` (B×3×H×W) to ``out`` (its enhanced version, same size) over
    windows of ``window`` times the picture's longer side, fitted on copies at most 512 pixels
    long: apply it to ``x`` (:func:`apply_field`) for the output the input can explain."""
    if not 0 < window <= 0.5:
        raise ConfigError(f"the fit window must be in (0, 0.5] of the picture, got {window}")
    height, width = x.shape[-2:]
    longer = max(height, width)
    if longer > _FIT_SIDE:
        scale = _FIT_SIDE / longer
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        x, out = (F.interpolate(t.float(), size=size, mode="area") for t in (x, out))
    radius = max(1, round(window * max(x.shape[-2:])))
    return fit_field(x, out, fit=fit, radius=radius, eps=eps)


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
