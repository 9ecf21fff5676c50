"""The HDM network (Liang et al., ACM MM 2022); its presets are in presets.py.

Shape of the network (all widths C, no normalisation layers)::

    x ─ normalise ─ conv0 (5×5) ─ conv1 (↓2) ─ conv2 (↓4) ─ body: G groups × N attention blocks
          │                         │ res1        │ res2        │
          │                         │             │   [deform ─ region(masks)] × 2, shared weights
          │                         │             └── mix1 ─────┘
          │                         └── mix2 ── deconv1 (↑2)
          │                                └── deconv2 (↑4) ─ head: three 5×5 convs ─ tanh
          └─ DCP masks at 1/4 scale (region level), computed on the input's device

Any H×W is accepted: the input is reflect-padded by a margin of ``BORDER`` pixels on every side
(so the network's own border response, a line of wrong colour, falls outside the picture), then
replicate-padded to a multiple of 4, and the output is cropped back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from hdm._checks import check_images
from hdm.dcp import MASK_MODES, DCPStats, MaskMode, dcp_masks
from hdm.deform import ModulatedDeformConv2d
from hdm.errors import InputError, ModelConfigError
from hdm.layers import AttentionGroup, Mix, RegionConv, Upsampler, conv

__all__ = ["BORDER", "HDM", "OUTPUTS", "TASKS", "HDMConfig", "OutputMode", "pad_input"]

TASKS = ("dehaze", "derain", "lowlight")
# FFA-Net's RESIDE-ITS statistics; the release uses them for every task.
INPUT_MEAN = (0.64, 0.60, 0.58)
INPUT_STD = (0.14, 0.15, 0.152)
SCALE = 4  # the network's total downsampling, and the scale of the DCP masks
# Reflected margin around the input: without it the head and the decoder draw a 2-pixel band
# of wrong colour along every border (up to 57 levels on low-light output); a multiple of SCALE
# keeps the masks aligned with the picture.
BORDER = 8
OutputMode = Literal["image", "residual", "gain"]
OUTPUTS: tuple[OutputMode, ...] = get_args(OutputMode)
# ``gain`` output: out = x * exp(GAIN_RANGE * g) + CORRECTION * c, with g, c in (-1, 1) from tanh.
GAIN_RANGE = 4.0  # brightening up to e^4 = 55x: enough for LOL's darkest pixels
CORRECTION = 0.1  # the per-channel correction (denoising, a colour cast) stays small: at 0.25
# it brightened by lifting blacks (a grey veil on LOL) instead of by the gain


@dataclass(frozen=True)
class HDMConfig:
    """Architecture of one HDM network.

    Args:
        width: channels at every scale (64 in the paper).
        groups: attention groups in the body (3). blocks: attention blocks per group (9).
        regions: DCP mask regions of the region conv (5).
        mask_mode: ``hard`` (the release's one-hot bins) or ``soft`` (continuous, for video).
        lowlight_masks: compute masks on a gamma-brightened input (the release's low-light recipe).
        output: what the head predicts (not in the paper beyond ``image``, which reproduces
            it). ``image``: the enhanced image itself. ``residual``: a correction added to the
            input, ``x + tanh(head)``; light degradations (thin rain) become a near-identity that
            trains in a few thousand steps. ``gain``: one brightening gain per pixel applied to
            all three channels plus a small per-channel correction (4 head channels); a common
            gain cannot change hue, so low-light colours survive.
    """

    width: int = 64
    groups: int = 3
    blocks: int = 9
    regions: int = 5
    mask_mode: MaskMode = "hard"
    lowlight_masks: bool = False
    output: OutputMode = "image"

    def __post_init__(self) -> None:
        if min(self.width, self.groups, self.blocks, self.regions) < 1:
            raise ModelConfigError(f"HDMConfig sizes must be positive, got {self}")
        if self.mask_mode not in MASK_MODES:
            raise ModelConfigError(f"mask_mode must be one of {MASK_MODES}, got {self.mask_mode!r}")
        if self.output not in OUTPUTS:
            raise ModelConfigError(f"output must be one of {OUTPUTS}, got {self.output!r}")

    @property
    def head_channels(self) -> int:
        return 4 if self.output == "gain" else 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HDMConfig:
        data = dict(data)
        if "residual" in data:  # checkpoints written before ``output`` existed
            data.setdefault("output", "residual" if data.pop("residual") else "image")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ModelConfigError(f"unknown HDMConfig keys: {sorted(unknown)}")
        return cls(**data)


class HDM(nn.Module):
    """HDM: channel-spatial attention, deformable conv and DCP region conv in one U-shaped net.

    ``forward(x, masks=None)`` takes B×3×H×W float RGB in [0, 1] and returns the enhanced
    batch, same shape, in [0, 1] (in training mode the raw tanh output, so the loss sees values
    outside [0, 1] too). ``masks`` (B×R×h×w at a quarter of :func:`pad_input`'s size) come
    from :meth:`region_masks` when given; otherwise they are computed from ``x`` on its device.
    """

    mean: torch.Tensor
    std: torch.Tensor

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
        self.head = nn.Sequential(conv(c, c, 5), conv(c, c, 5),
                                  conv(c, config.head_channels, 5), nn.Tanh())
        if config.output == "gain":  # start at the identity: gain 1, no correction
            last = self.head[2]
            assert isinstance(last, nn.Conv2d) and last.bias is not None
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def region_masks(
        self, x: torch.Tensor, stats: DCPStats | None = None
    ) -> tuple[torch.Tensor, DCPStats]:
        """The DCP masks this network expects for ``x`` (padded as forward pads it, see
        :func:`pad_input`), and the statistics used; pass smoothed ``stats`` to steady masks over
        video."""
        cfg = self.config
        return dcp_masks(
            pad_input(x),
            regions=cfg.regions,
            mode=cfg.mask_mode,
            lowlight=cfg.lowlight_masks,
            stats=stats,
        )

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        check_images(x)
        height, width = x.shape[-2:]
        padded = pad_input(x)
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
        out = self.head(features)[..., BORDER : BORDER + height, BORDER : BORDER + width]
        if self.config.output == "residual":
            out = out + x
        elif self.config.output == "gain":
            out = x * torch.exp(GAIN_RANGE * out[:, :1]) + CORRECTION * out[:, 1:]
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


def pad_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` as the network sees it: reflected by ``BORDER`` pixels on every side (replicated
    where the picture is too small to reflect), then replicate-padded at the bottom and right to
    multiples of ``SCALE``. The picture starts at (BORDER, BORDER) of the result."""
    height, width = x.shape[-2:]
    mode = "reflect" if min(height, width) > BORDER else "replicate"
    x = F.pad(x, (BORDER, BORDER, BORDER, BORDER), mode=mode)
    pad_h, pad_w = -x.shape[-2] % SCALE, -x.shape[-1] % SCALE
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
