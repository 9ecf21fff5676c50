"""The pure-PyTorch DCNv2 against a slow float64 reference, on every dtype and through tracing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hdm.deform import ModulatedDeformConv2d, modulated_deform_conv2d


def reference_deform_conv(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    padding: int = 1,
) -> torch.Tensor:
    """Per-tap bilinear sampling with zero padding, four explicit corners, float64."""
    x, offset, mask, weight, bias = (t.double() for t in (x, offset, mask, weight, bias))
    batch, channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    out = torch.zeros(batch, out_channels, height, width, dtype=torch.float64)
    rows = torch.arange(height, dtype=torch.float64).view(-1, 1)
    cols = torch.arange(width, dtype=torch.float64).view(1, -1)
    for b in range(batch):
        for i in range(kh):
            for j in range(kw):
                k = i * kw + j
                py = rows - padding + i + offset[b, 2 * k]
                px = cols - padding + j + offset[b, 2 * k + 1]
                y0, x0 = torch.floor(py), torch.floor(px)
                sample = torch.zeros(channels, height, width, dtype=torch.float64)
                for yy in (y0, y0 + 1):
                    for xx in (x0, x0 + 1):
                        corner_weight = (1 - (py - yy).abs()) * (1 - (px - xx).abs())
                        inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
                        values = x[b][
                            :, yy.clamp(0, height - 1).long(), xx.clamp(0, width - 1).long()
                        ]
                        sample += values * (corner_weight * inside)
                sample *= mask[b, k]
                out[b] += torch.einsum("oc,chw->ohw", weight[:, :, i, j], sample)
        out[b] += bias.view(-1, 1, 1)
    return out


Case = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def random_case(
    batch: int = 2, channels: int = 4, out_channels: int = 5, size: tuple[int, int] = (7, 9)
) -> Case:
    """x, offset, mask, weight, bias."""
    h, w = size
    x = torch.randn(batch, channels, h, w)
    # Offsets up to ±6 px on a 7×9 map: many taps sample partly or wholly outside the image.
    offset = torch.randn(batch, 18, h, w) * 3.0
    mask = torch.rand(batch, 9, h, w)
    weight = torch.randn(out_channels, channels, 3, 3)
    bias = torch.randn(out_channels)
    return x, offset, mask, weight, bias


def test_matches_float64_reference_with_offsets_outside_the_image() -> None:
    x, offset, mask, weight, bias = random_case()
    expected = reference_deform_conv(x, offset, mask, weight, bias)
    got = modulated_deform_conv2d(x.double(), offset, mask, weight.double(), bias.double())
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_integer_offsets_far_outside_give_only_the_bias() -> None:
    x, offset, mask, weight, bias = random_case()
    offset.fill_(100.0)
    got = modulated_deform_conv2d(x, offset, mask, weight, bias)
    torch.testing.assert_close(got, bias.view(1, -1, 1, 1).expand_as(got))


def test_zero_offsets_and_unit_mask_equal_a_plain_conv() -> None:
    x, offset, mask, weight, bias = random_case()
    got = modulated_deform_conv2d(x, offset.zero_(), mask.fill_(1.0), weight, bias)
    torch.testing.assert_close(got, torch.nn.functional.conv2d(x, weight, bias, padding=1))


@pytest.mark.parametrize(
    ("dtype", "tolerance"), [(torch.float32, 1e-4), (torch.bfloat16, 0.15), (torch.float16, 0.02)]
)
def test_low_precision_dtypes_stay_close_to_float64(dtype: torch.dtype, tolerance: float) -> None:
    x, offset, mask, weight, bias = random_case()
    expected = reference_deform_conv(x, offset, mask, weight, bias)
    got = modulated_deform_conv2d(
        x.to(dtype), offset.to(dtype), mask.to(dtype), weight.to(dtype), bias.to(dtype)
    )
    assert got.dtype == dtype
    error = (got.double() - expected).abs().max().item()
    assert error < tolerance * expected.abs().max().item()


def test_module_starts_as_half_a_plain_conv() -> None:
    layer = ModulatedDeformConv2d(4, 6)
    assert layer.bias is not None
    x = torch.randn(1, 4, 8, 8)
    plain = torch.nn.functional.conv2d(x, layer.weight, None, padding=1) * 0.5 + layer.bias.view(
        1, -1, 1, 1
    )
    torch.testing.assert_close(layer(x), plain)


def test_gradients_reach_input_weights_and_offsets() -> None:
    layer = ModulatedDeformConv2d(3, 3)
    torch.nn.init.normal_(layer.offset_mask.weight, std=0.1)
    x = torch.randn(1, 3, 6, 6, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert layer.offset_mask.weight.grad is not None
    assert layer.offset_mask.weight.grad.abs().sum() > 0


def test_compiles_with_fullgraph() -> None:
    layer = ModulatedDeformConv2d(4, 4)
    torch.nn.init.normal_(layer.offset_mask.weight, std=0.5)
    x = torch.randn(2, 4, 10, 12)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer(x))


def test_torch_export_runs_and_matches() -> None:
    layer = ModulatedDeformConv2d(4, 4)
    torch.nn.init.normal_(layer.offset_mask.weight, std=0.5)
    x = torch.randn(1, 4, 10, 12)
    exported = torch.export.export(layer, (x,))
    torch.testing.assert_close(exported.module()(x), layer(x))


# onnxscript still calls a torch pytree API that torch 2.13 deprecates.
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_onnx_export_uses_standard_ops_and_matches(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    layer = ModulatedDeformConv2d(4, 4).eval()
    torch.nn.init.normal_(layer.offset_mask.weight, std=0.5)
    x = torch.randn(1, 4, 10, 12)
    path = str(tmp_path / "dcn.onnx")
    torch.onnx.export(layer, (x,), path, dynamo=True, opset_version=18)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    op_types = {node.op_type for node in model.graph.node}
    assert "GridSample" in op_types
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), layer(x).detach(), rtol=1e-4, atol=1e-4)
