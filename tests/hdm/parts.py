"""Typed access to a network's parts for the tests that reach inside one.

mypy sees a ``Sequential``'s items as ``Module`` and a module's attributes as ``Tensor | Module``;
these check at run time what the test relies on, and tell mypy.
"""

from __future__ import annotations

import torch
from torch import nn

from hdm.model import HDM

__all__ = ["as_hdm", "bias_of", "conv_at"]


def as_hdm(model: nn.Module) -> HDM:
    """``build_model`` returns any enhancer (``dcp`` is not a network); an HDM preset's is."""
    assert isinstance(model, HDM), f"expected an HDM, got {type(model).__name__}"
    return model


def conv_at(sequence: nn.Module, index: int) -> nn.Conv2d:
    """The convolution at ``index`` of a ``Sequential`` (``model.head``, ``model.conv0``)."""
    assert isinstance(sequence, nn.Sequential), type(sequence).__name__
    layer = sequence[index]
    assert isinstance(layer, nn.Conv2d), f"{type(layer).__name__} at {index}"
    return layer


def bias_of(conv: nn.Conv2d) -> torch.Tensor:
    assert conv.bias is not None, "a convolution without bias"
    return conv.bias
