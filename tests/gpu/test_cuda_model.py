"""GPU parity of the model: what runs on CUDA must match the CPU reference. Skipped without a
GPU; run by benchmarks/gpu_suite.sh and benchmarks/gpu_train.sh on the GPU machine (needs only
torch: no PyAV or pyzmq)."""

from __future__ import annotations

import pytest
import torch

import hdm
from hdm.deform import modulated_deform_conv2d
from hdm.fusion import fuse_head
from tests.hdm.parts import as_hdm
from tests.hdm.test_deform import random_case, reference_deform_conv

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def test_deformable_conv_matches_the_float64_reference_on_cuda() -> None:
    case = random_case()
    expected = reference_deform_conv(*case)
    got = modulated_deform_conv2d(*(t.to(CUDA) for t in case), padding=1)
    assert torch.allclose(got.double().cpu(), expected, atol=1e-4)
    got_bf16 = modulated_deform_conv2d(*(t.to(CUDA, torch.bfloat16) for t in case), padding=1)
    assert (got_bf16.double().cpu() - expected).abs().max() < 0.15 * expected.abs().max()


def test_hdm_on_cuda_matches_the_cpu_in_fp32() -> None:
    model = hdm.build_model("hdm", task="dehaze", weights="random").eval()
    x = torch.rand(2, 3, 96, 128)
    with torch.inference_mode():
        expected = model(x)
        got = model.to(CUDA)(x.to(CUDA)).cpu()
    assert (got - expected).abs().max() < 1e-3


def test_fused_head_and_channels_last_on_cuda_match_the_plain_model() -> None:
    model = as_hdm(hdm.build_model("hdm", task="dehaze", weights="random")).eval().to(CUDA)
    x = torch.rand(1, 3, 120, 200, device=CUDA)
    with torch.inference_mode():
        expected = model(x)
        fuse_head(model)
        # torch's stubs lack Module.to(memory_format=...), which it has.
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        got = model(x.contiguous(memory_format=torch.channels_last))
    assert (got - expected).abs().max() < 1e-3


def test_bf16_compiled_hdm_stays_close_to_fp32_eager() -> None:
    model = hdm.build_model("hdm-s", task="dehaze", weights="default").eval().to(CUDA)
    x = torch.rand(2, 3, 128, 192, device=CUDA)
    compiled = torch.compile(model, fullgraph=True, dynamic=False)
    with torch.inference_mode():
        expected = model(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            got = compiled(x).float()
    assert (got - expected).abs().mean() < 2 / 255
