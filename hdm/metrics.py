"""Image quality metrics with their standard definitions, on B×3×H×W float images in [0, 1].

* PSNR on RGB, and on the Y channel of BT.601 YCbCr in [16, 235] (as deraining papers report
  it, after MATLAB's ``rgb2ycbcr``);
* SSIM with an 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, averaged over channels
  and pixels of the valid region (Wang et al. 2004, as scikit-image computes it with
  ``gaussian_weights=True, use_sample_covariance=False``).

``ssim`` is differentiable, so training uses the same definition as evaluation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["psnr", "psnr_y", "rgb_to_y", "ssim"]

_WINDOW, _SIGMA, _K1, _K2 = 11, 1.5, 0.01, 0.03


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB, shape (B,)."""
    mse = (pred.double() - target.double()).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-20))


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma in [16, 235] of RGB in [0, 1], B×1×H×W (MATLAB ``rgb2ycbcr``)."""
    weights = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return 16.0 + (x * weights).sum(dim=1, keepdim=True)


def psnr_y(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR on the Y channel, on the 0-255 scale, shape (B,)."""
    return psnr(rgb_to_y(pred.clamp(0, 1)), rgb_to_y(target), data_range=255.0)


def _gaussian_window(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    coords = torch.arange(_WINDOW, device=device, dtype=dtype) - _WINDOW // 2
    g = torch.exp(-(coords**2) / (2 * _SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, _WINDOW, _WINDOW).contiguous()


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM, shape (B,); images smaller than 11×11 are not supported."""
    c = pred.shape[1]
    window = _gaussian_window(c, pred.device, pred.dtype)
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)  # 'valid': no padding, as scikit-image crops

    mu_x, mu_y = blur(pred), blur(target)
    sigma_x = blur(pred * pred) - mu_x * mu_x
    sigma_y = blur(target * target) - mu_y * mu_y
    sigma_xy = blur(pred * target) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (sigma_x + sigma_y + c2)
    return (numerator / denominator).flatten(1).mean(dim=1)
