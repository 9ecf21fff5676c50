"""PSNR and SSIM against scikit-image's implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hdm.metrics import psnr, psnr_y, ssim


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.rand(2, 3, 48, 64, dtype=torch.float64)
    return clean, (clean + 0.08 * torch.randn_like(clean)).clamp(0, 1)


def as_numpy(x: torch.Tensor, i: int) -> np.ndarray:
    return x[i].permute(1, 2, 0).numpy()


def test_psnr_matches_scikit_image(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    a, b = pair
    expected = [peak_signal_noise_ratio(as_numpy(a, i), as_numpy(b, i), data_range=1.0)
                for i in range(2)]
    torch.testing.assert_close(psnr(a, b), torch.tensor(expected, dtype=torch.float64))


def test_ssim_matches_scikit_image_gaussian_ssim(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    a, b = pair
    expected = [structural_similarity(as_numpy(a, i), as_numpy(b, i), channel_axis=2,
                                      gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1.0)
                for i in range(2)]
    torch.testing.assert_close(ssim(a, b), torch.tensor(expected, dtype=torch.float64))


def test_psnr_y_uses_matlab_rgb2ycbcr_luma(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    a, b = pair
    expected = []
    for i in range(2):
        ya = rgb2ycbcr(as_numpy(a, i))[..., 0]
        yb = rgb2ycbcr(as_numpy(b, i))[..., 0]
        expected.append(peak_signal_noise_ratio(ya, yb, data_range=255.0))
    torch.testing.assert_close(psnr_y(a, b), torch.tensor(expected, dtype=torch.float64))


def test_identical_images_have_ssim_one_and_high_psnr() -> None:
    x = torch.rand(1, 3, 32, 32)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert psnr(x, x).item() > 150


def test_ssim_has_gradients_for_training() -> None:
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    (1 - ssim(x, torch.rand(1, 3, 32, 32))).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
