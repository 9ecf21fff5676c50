"""The HDM network (Liang et al., ACM MM 2022) and its presets.

Shape of the network (all widths C, no normalisation layers)::

    x ─ normalise ─ conv0 (5×5) ─ conv1 (↓2) ─ conv2 (↓4) ─ body: G groups × N attention blocks
          │                         │ res1        │ res2        │
          │                         │             │      [deform ─ region(masks)] × 2, shared weights
          │                         │             └── mix1 ─────┘
          │                         └── mix2 ── deconv1 (↑2)
          │                                └── deconv2 (↑4) ─ head: three 5×5 convs ─ tanh
          └─ DCP masks at 1/4 scale (region level), computed on the input's device

Any H×W is accepted: the input is replicate-padded to a multiple of 4 and the output cropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hdm._checks import check_images
from hdm.dcp import MASK_MODES, DCPStats, MaskMode, dcp_masks
from hdm.deform import ModulatedDeformConv2d
from hdm.errors import ConfigError, InputError
from hdm.layers import AttentionGroup, Mix, RegionConv, Upsampler, conv

__all__ = ["HDM", "TASKS", "HDMConfig", "pad_to_multiple"]

TASKS = ("dehaze", "derain", "lowlight")
# FFA-Net's RESIDE-ITS statistics; the release uses them for every task.
INPUT_MEAN = (0.64, 0.60, 0.58)
INPUT_STD = (0.14, 0.15, 0.152)
SCALE = 4  # the network's total downsampling, and the scale of the DCP masks


@dataclass(frozen=True)
class HDMConfig:
    """Architecture of one HDM network.

    Args:
        width: channels at every scale (64 in the paper).
        groups: attention groups in the body (3). blocks: attention blocks per group (9).
        regions: DCP mask regions of the region conv (5).
        mask_mode: ``hard`` (the release's one-hot bins) or ``soft`` (continuous, for video).
        lowlight_masks: compute masks on a gamma-brightened input (the release's low-light recipe).
        residual: predict a correction added to the input, ``x + tanh(head)``, instead of the
            image itself. Not in the paper (False reproduces it); it makes light degradations
            (thin rain) a near-identity that trains in a few thousand steps.
    """

    width: int = 64
    groups: int = 3
    blocks: int = 9
    regions: int = 5
    mask_mode: MaskMode = "hard"
    lowlight_masks: bool = False
    residual: bool = False

    def __post_init__(self) -> None:
        if min(self.width, self.groups, self.blocks, self.regions) < 1:
            raise ConfigError(f"HDMConfig sizes must be positive, got {self}")
        if self.mask_mode not in MASK_MODES:
            raise ConfigError(f"mask_mode must be one of {MASK_MODES}, got {self.mask_mode!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HDMConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown HDMConfig keys: {sorted(unknown)}")
        return cls(**data)


class HDM(nn.Module):
    """HDM: channel-spatial attention, deformable conv and DCP region conv in one U-shaped net.

    ``forward(x, masks=None)`` takes B×3×H×W float RGB in [0, 1] and returns the enhanced
    batch, same shape, in [0, 1] (in training mode the raw tanh output, so the loss sees values
    outside [0, 1] too). ``masks`` (B×R×⌈H/4⌉×⌈W/4⌉) come from :meth:`region_masks` when given;
    otherwise they are computed from ``x`` on its device.
    """

    def __init__(self, config: HDMConfig = HDMConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.width
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1), persistent=False)
        self.conv0 = nn.Sequential(conv(3, c, 5), nn.ReLU())
        self.conv1 = nn.Sequential(conv(c, c, 3), conv(c, c, 3, stride=2), nn.ReLU())
        self.conv2 = nn.Sequential(conv(c, c, 3), conv(c, c, 3, stride=2), nn.ReLU())
        self.body = nn.Sequential(
            *[AttentionGroup(c, config.blocks) for _ in range(config.groups)], nn.ReLU()
        )
        self.deform = ModulatedDeformConv2d(c, c, 3)
        self.region = RegionConv(c, config.regions)
        self.mix1 = Mix(-1.0)
        self.deconv1 = Upsampler(c)
        self.mix2 = Mix(-0.6)
        self.deconv2 = Upsampler(c)
        self.head = nn.Sequential(conv(c, c, 5), conv(c, c, 5), conv(c, 3, 5), nn.Tanh())

    def region_masks(
        self, x: torch.Tensor, stats: DCPStats | None = None
    ) -> tuple[torch.Tensor, DCPStats]:
        """The DCP masks this network expects for ``x`` (padded as forward pads it), and the
        statistics used; pass smoothed ``stats`` to steady masks over video."""
        cfg = self.config
        return dcp_masks(
            pad_to_multiple(x),
            regions=cfg.regions,
            mode=cfg.mask_mode,
            lowlight=cfg.lowlight_masks,
            stats=stats,
        )

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        check_images(x)
        height, width = x.shape[-2:]
        padded = pad_to_multiple(x)
        if masks is None:
            masks = self.region_masks(x)[0]
        self._check_masks(masks, padded)

        features = self.conv0((padded - self.mean) / self.std)
        res1 = self.conv1(features)
        res2 = self.conv2(res1)
        features = self.body(res2)
        masks = masks.to(features.dtype)
        for _ in range(2):  # structure then region level, twice, with shared weights
            features = self.region(self.deform(features), masks)
        features = self.deconv1(self.mix1(res2, features))
        features = self.deconv2(self.mix2(res1, features))
        out = self.head(features)[..., :height, :width]
        if self.config.residual:
            out = out + x
        return out if self.training else out.clamp(0.0, 1.0)

    def _check_masks(self, masks: torch.Tensor, padded: torch.Tensor) -> None:
        expected = (
            padded.shape[0],
            self.config.regions,
            padded.shape[-2] // SCALE,
            padded.shape[-1] // SCALE,
        )
        if tuple(masks.shape) != expected:
            raise InputError(
                f"masks must have shape {expected} for input {tuple(padded.shape)}, got "
                f"{tuple(masks.shape)}; make them with model.region_masks(x)"
            )


def pad_to_multiple(x: torch.Tensor, multiple: int = SCALE) -> torch.Tensor:
    """Replicate-pad the bottom and right of ``x`` to multiples of ``multiple``, as forward does."""
    pad_h = -x.shape[-2] % multiple
    pad_w = -x.shape[-1] % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
