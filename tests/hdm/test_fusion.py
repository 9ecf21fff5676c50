"""The fused 13×13 head equals the original three 5×5 convs everywhere, borders included."""

from __future__ import annotations

import pytest
import torch

from hdm.fusion import FusedHead, fuse_head
from hdm.model import HDM, HDMConfig
from tests.hdm.parts import bias_of, conv_at


@pytest.mark.parametrize("size", [(40, 52), (21, 33), (12, 9)])
def test_fused_head_equals_the_original_everywhere(size: tuple[int, int]) -> None:
    model = HDM(HDMConfig(width=8, groups=1, blocks=1)).double()
    for conv in (conv_at(model.head, i) for i in range(3)):
        torch.nn.init.normal_(conv.weight, std=0.2)
        torch.nn.init.normal_(bias_of(conv), std=0.2)
    features = torch.randn(2, 8, *size, dtype=torch.float64)
    with torch.no_grad():
        expected = model.head(features)
        got = FusedHead(model.head)(features)
    # Exact up to float64 rounding; in float32 the different summation order costs ~1e-5.
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_fused_model_gives_the_same_output_and_state_dict() -> None:
    model = HDM(HDMConfig(width=8, groups=1, blocks=1)).eval()
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        expected = model(x)
        keys = set(model.state_dict())
        fuse_head(model)
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-4)
    assert set(model.state_dict()) == keys
    assert fuse_head(model).head is model.head  # fusing twice is a no-op


def test_fused_head_refuses_other_heads() -> None:
    with pytest.raises(ValueError, match="three 5×5"):
        FusedHead(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3), torch.nn.Tanh()))
