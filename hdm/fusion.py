"""Exact fusion of HDM's output head for inference.

The head is three 5×5 convs with no nonlinearity between them (then tanh), so away from the
image border it is one linear map: a single 13×13 conv C→3 with a bias, 32,448 instead of
209,600 multiply-adds per pixel (the head is 46% of the network's cost). Within 4 pixels of the
border the original differs, because each inner conv zero-pads its own input; there the
original three convs are run on thin strips and their result replaces the fused one, so the
fused head equals the original everywhere (to float rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hdm.errors import ModelConfigError
from hdm.model import HDM

__all__ = ["FusedHead", "fuse_head"]

_RADIUS = 6  # 13×13 fused kernel
_BAND = 4  # border rows/columns where intermediate zero padding matters
_STRIP = _BAND + _RADIUS  # input columns the original head needs for that band


def _compose(convs: list[nn.Conv2d]) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel (Cout×Cin×13×13) and bias of the convs applied in sequence, in float64, found
    from their response to impulses (no padding effects: the canvas is larger than the
    kernel's reach)."""
    cin = convs[0].in_channels
    size = 4 * _RADIUS + 1
    centre = size // 2
    impulses = torch.zeros(cin, cin, size, size, dtype=torch.float64)
    impulses[torch.arange(cin), torch.arange(cin), centre, centre] = 1.0
    response = impulses
    constant = torch.zeros(1, cin, size, size, dtype=torch.float64)
    for conv in convs:
        weight = conv.weight.detach().double()
        bias = conv.bias.detach().double() if conv.bias is not None else None
        response = F.conv2d(response, weight, None, padding=conv.padding)
        constant = F.conv2d(constant, weight, bias, padding=conv.padding)
    # Cross-correlation: the response at centre - s is the kernel tap s.
    window = response[:, :, centre - _RADIUS : centre + _RADIUS + 1,
                      centre - _RADIUS : centre + _RADIUS + 1]
    kernel = window.flip(-2, -1).transpose(0, 1).contiguous()
    return kernel, constant[0, :, centre, centre]


class FusedHead(nn.Sequential):
    """Drop-in for HDM's head (same submodules and state_dict keys), computing the interior
    with one 13×13 conv and the 4-pixel border band with the original convs.

    The 13×13 kernel is composed once, here: fuse after loading weights (a head changed later
    needs ``FusedHead(head)`` again)."""

    fused_weight: torch.Tensor
    fused_bias: torch.Tensor

    def __init__(self, head: nn.Sequential) -> None:
        super().__init__(*head)
        convs = [m for m in head if isinstance(m, nn.Conv2d)]
        if len(convs) != 3 or any(c.kernel_size != (5, 5) for c in convs):
            raise ModelConfigError("fuse_head expects three 5×5 convs followed by tanh")
        kernel, bias = _compose(convs)
        dtype = convs[0].weight.dtype
        self.register_buffer("fused_weight", kernel.to(dtype), persistent=False)
        self.register_buffer("fused_bias", bias.to(dtype), persistent=False)

    def _original(self, x: torch.Tensor) -> torch.Tensor:
        for conv in list(self)[:3]:
            x = conv(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height < 2 * _STRIP or width < 2 * _STRIP:
            return torch.tanh(self._original(x))
        out = F.conv2d(x, self.fused_weight.to(x.dtype), self.fused_bias.to(x.dtype),
                       padding=_RADIUS)
        top = self._original(x[..., :_STRIP, :])[..., :_BAND, :]
        bottom = self._original(x[..., -_STRIP:, :])[..., -_BAND:, :]
        left = self._original(x[..., :, :_STRIP])[..., :, :_BAND]
        right = self._original(x[..., :, -_STRIP:])[..., :, -_BAND:]
        middle = torch.cat([left, out[..., :, _BAND:-_BAND], right], dim=-1)
        rows = torch.cat([top, middle[..., _BAND:-_BAND, :], bottom], dim=-2)
        return torch.tanh(rows)


def fuse_head(model: HDM) -> HDM:
    """Replace ``model.head`` by its exact fused form (in place; weights unchanged)."""
    if not isinstance(model.head, FusedHead):
        model.head = FusedHead(model.head)
    return model
