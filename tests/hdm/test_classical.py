"""Classical enhancers on scenes made by the physical models they invert, and on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hdm
from hdm import classical
from hdm.errors import InputError, ModelConfigError


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / F.mse_loss(a.double(), b.double())))


def colourful_scene(size: int = 128) -> torch.Tensor:
    """Saturated patches with texture: every pixel has a dark channel, as the prior assumes."""
    base = F.interpolate(torch.rand(1, 3, 6, 6), size=(size, size), mode="nearest")
    base = base * (base > base.amin(1, keepdim=True))
    return (base + 0.05 * torch.rand(1, 3, size, size)).clamp(0, 1)


def test_dehaze_inverts_the_scattering_model() -> None:
    clean = colourful_scene()
    depth = torch.linspace(0.2, 1.5, 128).view(1, 1, 128, 1).expand(1, 1, 128, 128).clone()
    depth[..., :16, :] = 5.0  # a strip of sky: haze only, as in most outdoor photos
    t = torch.exp(-1.2 * depth)
    hazy = clean * t + torch.tensor([0.85, 0.88, 0.9]).view(1, 3, 1, 1) * (1 - t)
    dehazed = classical.dehaze(hazy)
    assert dehazed.shape == hazy.shape
    assert psnr(dehazed, clean) > psnr(hazy, clean) + 5


def test_lowlight_brings_an_underexposed_scene_much_closer_to_its_exposure() -> None:
    clean = colourful_scene()
    dark = clean * 0.15
    out = classical.enhance_lowlight(dark)
    assert psnr(out, clean) > psnr(dark, clean) + 10
    assert (out >= 0.999).float().mean() < 0.3  # Dong et al. clip highlights, but not everything


def test_derain_removes_thin_bright_streaks() -> None:
    clean = F.interpolate(torch.rand(1, 3, 8, 8), size=(96, 96), mode="bilinear")
    streaks = torch.zeros(1, 1, 96, 96)
    for start in range(0, 96, 7):  # one-pixel-wide, slanted, 12 px long, every 7 columns
        for step in range(12):
            streaks[..., (start * 5 + step) % 90, (start + step // 3) % 96] = 0.4
    rainy = (clean + streaks).clamp(0, 1)
    assert psnr(classical.derain(rainy), clean) > psnr(rainy, clean) + 2


@pytest.mark.parametrize("task", hdm.TASKS)
def test_enhancer_module_keeps_shape_and_dtype_on_flat_frames(task: str) -> None:
    enhancer = hdm.build_model("dcp", task=task)
    for value in (0.0, 1.0):
        x = torch.full((2, 3, 33, 47), value, dtype=torch.bfloat16)
        y = enhancer(x)
        assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y.float()).all()


def test_enhancer_refuses_bad_tasks_weights_and_input() -> None:
    with pytest.raises(ModelConfigError, match="task"):
        hdm.build_model("dcp", task="sharpen")
    with pytest.raises(ModelConfigError, match="no weights"):
        hdm.build_model("dcp", weights="x.safetensors")
    with pytest.raises(InputError, match="float"):
        hdm.build_model("dcp")(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def load_rgb(path: Path) -> torch.Tensor:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float() / 255


def test_dehaze_improves_the_real_ohaze_pair(shared_data: Path) -> None:
    pair = shared_data / "dehaze" / "ohaze_subset"
    hazy = load_rgb(next((pair / "hazy").iterdir()))
    clean = load_rgb(next((pair / "gt").iterdir()))
    hazy, clean = (F.interpolate(t, scale_factor=0.25, mode="area") for t in (hazy, clean))
    assert psnr(classical.dehaze(hazy), clean) > psnr(hazy, clean)
