"""Validation of image batches, shared by the model, the DCP functions and the classical
enhancers."""

from __future__ import annotations

import torch

from hdm.errors import InputError


def check_images(x: object, *, name: str = "images") -> torch.Tensor:
    """Return ``x`` if it is a B×3×H×W floating tensor of finite values, else raise InputError.

    The finiteness check is one float32-accumulated sum (NaN and inf propagate through it),
    one pass over the data; it synchronises with the device, so it is skipped while
    torch.compile traces (compiled paths are fed by our own decoder, which cannot produce NaN).
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(
            f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}; "
            "convert 8-bit images with x.float() / 255"
        )
    if x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"{name} must have shape B×3×H×W (RGB), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(x.shape)})")
    if not torch.compiler.is_compiling() and not bool(torch.sum(x, dtype=torch.float32).isfinite()):
        raise InputError(f"{name} contain NaN or infinite values")
    return x
