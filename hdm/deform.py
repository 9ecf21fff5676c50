"""Modulated deformable convolution (DCNv2, Zhu et al. CVPR 2019) in pure PyTorch.

HDM's structure-level dynamics. The release used the compiled ``dcn_v2`` CUDA extension, which is
fp32 and CUDA only and opaque to torch.compile, torch.export and ONNX. This version samples with
``F.grid_sample`` (one call for all taps) and contracts with one matmul, so it runs on any device
and dtype and exports as standard ops. Semantics match dcn_v2: per-tap (dy, dx) offsets
interleaved in the offset tensor, bilinear sampling with zero padding outside the image, and a
per-tap modulation scalar.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ModulatedDeformConv2d", "modulated_deform_conv2d"]


def _sampling_grid(
    offset: torch.Tensor,
    kernel: tuple[int, int],
    padding: int,
    dilation: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """grid_sample grid (B×(K·H)×W×2) for every tap of every output pixel.

    ``dtype`` is float32 or wider whatever the feature dtype: in bf16 a coordinate of 400 would
    be off by a whole pixel.
    """
    b, _, h, w = offset.shape
    kh, kw = kernel
    taps = kh * kw
    offset = offset.to(dtype).reshape(b, taps, 2, h, w)
    device = offset.device
    tap_y = (torch.arange(kh, device=device) * dilation - padding).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=device) * dilation - padding).repeat(kh)
    rows = torch.arange(h, device=device, dtype=dtype).view(1, 1, h, 1)
    cols = torch.arange(w, device=device, dtype=dtype).view(1, 1, 1, w)
    y = rows + tap_y.view(1, taps, 1, 1) + offset[:, :, 0]
    x = cols + tap_x.view(1, taps, 1, 1) + offset[:, :, 1]
    # align_corners=False maps pixel centre i to (2i + 1) / size - 1, for any size >= 1.
    grid = torch.stack(((2 * x + 1) / w - 1, (2 * y + 1) / h - 1), dim=-1)
    return grid.reshape(b, taps * h, w, 2)


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    padding: int = 1,
    dilation: int = 1,
) -> torch.Tensor:
    """Stride-1 modulated deformable convolution with one deformable group.

    Args:
        x: B×Cin×H×W features.
        offset: B×2K×H×W, tap k's (dy, dx) in channels (2k, 2k+1), taps in row-major order.
        mask: B×K×H×W modulation scalars (already through a sigmoid).
        weight: Cout×Cin×kh×kw; bias: Cout or None.

    Returns:
        B×Cout×H×W in the dtype of ``x``. Sampling runs in float32 (float64 for float64 input),
        the contraction in x's dtype.
    """
    b, cin, h, w = x.shape
    cout, _, kh, kw = weight.shape
    taps = kh * kw
    sampling_dtype = torch.promote_types(x.dtype, torch.float32)
    grid = _sampling_grid(offset, (kh, kw), padding, dilation, sampling_dtype)
    sampled = F.grid_sample(
        x.to(sampling_dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    modulation = mask.to(sampling_dtype).reshape(b, 1, taps, h * w)
    sampled = sampled.reshape(b, cin, taps, h * w) * modulation
    columns = sampled.reshape(b, cin * taps, h * w).to(x.dtype)
    out = torch.matmul(weight.reshape(cout, cin * taps).to(x.dtype), columns)
    if bias is not None:
        out = out + bias.to(x.dtype).view(1, cout, 1)
    return out.reshape(b, cout, h, w)


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer whose offsets and modulation come from a plain conv on the same input.

    Args:
        in_channels, out_channels: feature widths.
        kernel_size: odd square kernel (3 in HDM).
        bias: whether the main conv has a bias (the released checkpoint may or may not).

    The offset conv (``offset_mask``, 2K + K outputs) starts at zero, so the layer starts as a
    plain conv scaled by sigmoid(0) = 0.5, as in the release.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, *, bias: bool = True
    ) -> None:
        super().__init__()
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        taps = kernel_size * kernel_size
        self.offset_mask = nn.Conv2d(in_channels, 3 * taps, kernel_size, padding=self.padding)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.weight[0].numel())
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        nn.init.zeros_(self.offset_mask.weight)
        assert self.offset_mask.bias is not None
        nn.init.zeros_(self.offset_mask.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dy_dx_first, dy_dx_second, modulation = self.offset_mask(x).chunk(3, dim=1)
        offset = torch.cat((dy_dx_first, dy_dx_second), dim=1)
        return modulated_deform_conv2d(
            x, offset, torch.sigmoid(modulation), self.weight, self.bias, padding=self.padding
        )
