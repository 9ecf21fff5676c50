"""The HDM network: sizes of the paper, any input size, masks, layouts, tracing, bad input."""

from __future__ import annotations

import pytest
import torch

import hdm
from hdm.errors import InputError, ModelConfigError
from hdm.layers import AttentionGroup
from hdm.model import GAIN_RANGE, HDM, HDMConfig
from tests.hdm.parts import as_hdm, bias_of, conv_at

TINY = HDMConfig(width=8, groups=1, blocks=1, regions=5)


def used_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_preset_has_the_release_parameter_count() -> None:
    model = as_hdm(hdm.build_model("hdm", weights="random"))
    assert used_parameters(model) == 2_819_292
    # 3 groups (+ReLU), 9 blocks (+conv)
    group = model.body[0]
    assert isinstance(group, AttentionGroup)
    assert len(model.body) == 4 and len(group.gp) == 10


def test_small_preset_is_much_smaller() -> None:
    small = used_parameters(hdm.build_model("hdm-s", weights="random"))
    assert small < used_parameters(hdm.build_model("hdm", weights="random")) / 5


def test_initial_values_of_the_mix_blends() -> None:
    model = as_hdm(hdm.build_model("hdm-s", weights="random"))
    assert torch.sigmoid(model.mix1.w).item() == pytest.approx(0.2689, abs=1e-4)
    assert torch.sigmoid(model.mix2.w).item() == pytest.approx(0.3543, abs=1e-4)


@pytest.mark.parametrize("size", [(64, 64), (62, 62), (45, 61), (5, 7)])
def test_any_size_gives_the_same_shape_in_unit_range(size: tuple[int, int]) -> None:
    model = HDM(TINY).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1


def test_given_masks_equal_computed_masks() -> None:
    model = HDM(TINY).eval()
    x = torch.rand(1, 3, 30, 42)
    masks, _ = model.region_masks(x)
    assert masks.shape == (1, 5, 12, 15)  # reflected by 8 on each side to 46×58, to 48×60, /4
    with torch.no_grad():
        torch.testing.assert_close(model(x, masks), model(x))


def test_masks_change_the_output() -> None:
    model = HDM(TINY).eval()
    x = torch.rand(1, 3, 32, 32)
    masks, _ = model.region_masks(x)
    with torch.no_grad():
        assert not torch.allclose(model(x, masks), model(x, masks.roll(1, dims=1)))


def test_wrong_mask_shape_is_refused() -> None:
    model = HDM(TINY).eval()
    with pytest.raises(InputError, match="region_masks"):
        model(torch.rand(1, 3, 32, 32), torch.ones(1, 5, 4, 4))


def test_channels_last_matches_contiguous() -> None:
    model = HDM(TINY).eval()
    x = torch.rand(2, 3, 36, 40)
    with torch.no_grad():
        expected = model(x)
        # torch's stubs lack Module.to(memory_format=...), which it has.
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        got = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_batch_members_do_not_interact() -> None:
    model = HDM(TINY).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_training_mode_returns_the_raw_tanh_output() -> None:
    model = HDM(TINY).train()
    torch.nn.init.constant_(bias_of(conv_at(model.head, 2)), -3.0)
    y = model(torch.rand(1, 3, 16, 16))
    assert y.min() < 0
    y.mean().backward()
    assert conv_at(model.conv0, 0).weight.grad is not None


def test_bfloat16_autocast_stays_close_to_float32() -> None:
    model = HDM(TINY).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(x)
    assert (got.float() - expected).abs().max() < 0.05


def test_compiles_with_fullgraph_and_exports() -> None:
    model = HDM(TINY).eval()
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        expected = model(x)
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(x), expected)
        exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), expected)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "float"),
        (torch.zeros(1, 1, 8, 8), "B×3×H×W"),
        (torch.zeros(3, 8, 8), "B×3×H×W"),
        (torch.zeros(0, 3, 8, 8), "empty"),
        (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
        ([[0.0]], "torch.Tensor"),
    ],
)
def test_bad_input_raises_one_clear_error(bad: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        HDM(TINY)(bad)


def test_builder_refuses_unknown_names_and_tasks() -> None:
    with pytest.raises(ModelConfigError, match="unknown model"):
        hdm.build_model("resnet")
    with pytest.raises(ModelConfigError, match="task"):
        hdm.build_model("hdm-s", task="deblur", weights="random")
    with pytest.raises(ModelConfigError, match="unknown HDMConfig keys"):
        HDMConfig.from_dict({"width": 8, "depth": 3})


def test_lowlight_task_uses_brightened_masks() -> None:
    assert as_hdm(hdm.build_model("hdm-s", task="lowlight", weights="random")
                  ).config.lowlight_masks
    assert not as_hdm(hdm.build_model("hdm-s", task="dehaze", weights="random")
                      ).config.lowlight_masks


def test_residual_variant_starts_near_the_identity() -> None:
    model = HDM(HDMConfig(width=8, groups=1, blocks=1, output="residual")).eval()
    x = torch.rand(1, 3, 32, 40) * 0.8 + 0.1
    with torch.no_grad():
        out = model(x)
    assert (out - x).abs().mean() < 0.05
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in HDM(HDMConfig(width=8, groups=1, blocks=1)).parameters())


def test_gain_output_starts_at_the_identity_and_keeps_hue() -> None:
    model = HDM(HDMConfig(width=8, groups=1, blocks=1, output="gain")).eval()
    x = torch.rand(1, 3, 40, 44) * 0.4 + 0.01
    with torch.no_grad():
        assert torch.allclose(model(x), x, atol=1e-6)
        bias_of(conv_at(model.head, 2)).copy_(torch.tensor([0.2, 0.0, 0.0, 0.0]))  # one gain
        y = model(x)
    expected = torch.exp(GAIN_RANGE * torch.tanh(torch.tensor(0.2)))
    assert torch.allclose(y, x * expected, rtol=1e-5)  # every channel scaled alike: same hue


def test_checkpoints_from_before_output_modes_still_load() -> None:
    assert HDMConfig.from_dict({"width": 8, "residual": True}).output == "residual"
    assert HDMConfig.from_dict({"width": 8, "residual": False}).output == "image"
    with pytest.raises(ModelConfigError, match="output"):
        HDMConfig(output="log")  # type: ignore[arg-type]
