"""Building blocks of HDM besides the deformable conv: attention blocks, the DCP-guided region
conv, the skip blends and the blurred upsampler. Names follow the paper; departures from the
release are stated where they are made."""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "AttentionBlock",
    "AttentionGroup",
    "ChannelAttention",
    "Mix",
    "PixelAttention",
    "RegionConv",
    "Upsampler",
]


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """Zero-padded 'same' conv with a bias, the only conv flavour HDM uses."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2)


class ChannelAttention(nn.Module):
    """Channel-level dynamics: squeeze (global mean) -> 1×1 -> ReLU -> 1×1 -> sigmoid gate.

    Args:
        channels: feature width. reduction: bottleneck ratio (8 in HDM / FFA-Net).
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.ca = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.ca(x.mean(dim=(2, 3), keepdim=True))


class PixelAttention(nn.Module):
    """Spatial-level dynamics: a per-pixel sigmoid gate shared by all channels."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pa = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 1, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.pa(x)


class AttentionBlock(nn.Module):
    """FFA-Net's residual block: conv -> ReLU (+x) -> conv -> channel attn -> pixel attn (+x)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels, 3)
        self.act1 = nn.ReLU()
        self.conv2 = conv(channels, channels, 3)
        self.calayer = ChannelAttention(channels)
        self.palayer = PixelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.conv1(x)) + x
        y = self.palayer(self.calayer(self.conv2(y)))
        return y + x


class AttentionGroup(nn.Module):
    """``blocks`` attention blocks and a 3×3 conv, with a residual over the whole group."""

    def __init__(self, channels: int, blocks: int) -> None:
        super().__init__()
        self.gp = nn.Sequential(
            *[AttentionBlock(channels) for _ in range(blocks)], conv(channels, channels, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gp(x) + x


class RegionConv(nn.Module):
    """Region-level dynamics: DRConv with regions given by the DCP masks (``DRConv2d_phy``).

    A generator turns the features, pooled to 3×3, into one C×C×3×3 kernel per region and per
    image; every kernel is applied everywhere and the results are blended by the masks:
    ``y = sum_r M_r * (K_r ⋆ x)``, no bias. With hard masks each pixel gets one kernel.

    Departure from the release: the per-image kernels are applied by one grouped conv over the
    batch folded into channels, through ``reshape`` rather than ``view``, so channels_last input
    works, and no custom autograd.Function is involved, so torch.export and ONNX see plain ops.

    Args:
        channels: feature width C. regions: number of mask regions R.
    """

    def __init__(self, channels: int, regions: int = 5) -> None:
        super().__init__()
        self.channels = channels
        self.regions = regions
        self.conv_kernel = nn.Sequential(
            nn.AdaptiveAvgPool2d((3, 3)),
            nn.Conv2d(channels, regions * regions, 1),
            nn.Sigmoid(),
            nn.Conv2d(regions * regions, regions * channels * channels, 1, groups=regions),
        )

    def forward(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """x: B×C×h×w features; masks: B×R×h×w region weights. Returns B×C×h×w."""
        b, c, h, w = x.shape
        kernels = self.conv_kernel(x).reshape(b * self.regions * c, c, 3, 3)
        responses = nn.functional.conv2d(x.reshape(1, b * c, h, w), kernels, padding=1, groups=b)
        responses = responses.reshape(b, self.regions, c, h, w)
        return (responses * masks.unsqueeze(2)).sum(dim=1)


class Mix(nn.Module):
    """Learned blend of a skip and the deep path: ``s * skip + (1 - s) * deep``, s = sigmoid(w)."""

    def __init__(self, init: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([init]))

    def forward(self, skip: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.w).to(deep.dtype)
        return skip * s + deep * (1 - s)


class Upsampler(nn.Sequential):
    """×2 transposed conv, then a one-pixel reflect pad and a 2×2 average (a blur against
    checkerboard artefacts), then ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1),
            nn.ReflectionPad2d((1, 0, 1, 0)),
            nn.AvgPool2d(2, stride=1),
            nn.ReLU(),
        )
