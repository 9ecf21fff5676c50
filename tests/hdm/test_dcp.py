"""Dark channel prior: filters against direct definitions, masks, statistics and edge cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdm import dcp
from hdm.errors import InputError, ModelConfigError


def test_dark_channel_matches_opencv_erosion() -> None:
    x = torch.rand(1, 3, 40, 52)
    channel_min = x[0].amin(0).numpy()
    expected = cv2.erode(channel_min, np.ones((15, 15), np.uint8))
    torch.testing.assert_close(dcp.dark_channel(x, 15)[0, 0], torch.from_numpy(expected))


@pytest.mark.parametrize("radius", [1, 5, 30])
def test_box_filter_is_the_clipped_window_mean(radius: int) -> None:
    x = torch.rand(2, 1, 37, 45, dtype=torch.float64)
    size = 2 * radius + 1
    padded_sum = F.conv2d(F.pad(x, (radius,) * 4), torch.ones(1, 1, size, size, dtype=x.dtype))
    counts = F.conv2d(
        F.pad(torch.ones_like(x), (radius,) * 4), torch.ones(1, 1, size, size, dtype=x.dtype)
    )
    torch.testing.assert_close(dcp.box_filter(x, radius), padded_sum / counts)


def test_guided_filter_is_affine_in_its_input() -> None:
    guide = torch.rand(1, 1, 30, 30)
    src = torch.rand(1, 1, 30, 30)
    once = dcp.guided_filter(guide, src, 4, 1e-3)
    scaled = dcp.guided_filter(guide, 1.0 - 0.7 * src, 4, 1e-3)
    torch.testing.assert_close(scaled, 1.0 - 0.7 * once, rtol=1e-4, atol=1e-5)


def test_guided_filter_keeps_edges_of_the_guide() -> None:
    step = torch.zeros(1, 1, 32, 32)
    step[..., 16:] = 1.0
    noisy = step + 0.05 * torch.randn_like(step)
    out = dcp.guided_filter(step, noisy, 4, 1e-4)
    assert (out - step).abs().mean() < 0.5 * (noisy - step).abs().mean()


def test_fast_guided_filter_approximates_the_full_resolution_one() -> None:
    guide = F.interpolate(torch.rand(1, 1, 16, 16), size=(64, 64), mode="bilinear")
    src = guide * 0.5 + 0.2
    small_guide = dcp.downscale(guide, 4)
    fast = dcp.guided_filter(small_guide, dcp.downscale(src, 4), 4, 1e-4, full_guide=guide)
    assert (fast - src).abs().max() < 0.02


def test_airlight_is_the_colour_of_the_haziest_region_not_one_bright_pixel() -> None:
    x = torch.full((1, 3, 100, 100), 0.1)
    x[:, :, :20, :20] = torch.tensor([0.8, 0.85, 0.9]).view(1, 3, 1, 1)
    x[:, :, 90, 90] = 1.0  # a lone white pixel: the min filter and the mean must ignore it
    light = dcp.airlight(x, dcp.dark_channel(x, 7))
    torch.testing.assert_close(light, torch.tensor([[0.8, 0.85, 0.9]]))


def test_hard_masks_follow_the_release_bins() -> None:
    levels = torch.tensor([1.0, 0.85, 0.8, 0.79, 0.5, 0.39, 0.2, 0.19, 0.0]).view(1, 1, 1, -1)
    masks = dcp.region_masks(levels, torch.zeros(1), torch.ones(1), mode="hard")
    assert masks.argmax(1).flatten().tolist() == [0, 0, 0, 1, 2, 3, 3, 4, 4]
    assert torch.equal(masks.sum(1), torch.ones(1, 1, 9))


def test_soft_masks_are_a_continuous_partition_of_unity() -> None:
    levels = torch.linspace(0, 1, 1001).view(1, 1, 1, -1)
    masks = dcp.region_masks(levels, torch.zeros(1), torch.ones(1), mode="soft")
    assert masks.min() >= 0
    torch.testing.assert_close(masks.sum(1), torch.ones(1, 1, 1001))
    # Lipschitz in the level: no jumps between neighbouring levels (step 0.001, slope <= 5).
    assert (masks[..., 1:] - masks[..., :-1]).abs().max() <= 5 * 0.001 + 1e-6
    # At a bin centre the soft mask equals the hard one.
    centre = torch.tensor([0.9]).view(1, 1, 1, 1)
    soft = dcp.region_masks(centre, torch.zeros(1), torch.ones(1), mode="soft")
    hard = dcp.region_masks(centre, torch.zeros(1), torch.ones(1), mode="hard")
    torch.testing.assert_close(soft, hard)


def test_unknown_mask_mode_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="mask mode"):
        dcp.region_masks(torch.rand(1, 1, 4, 4), torch.zeros(1), torch.ones(1), mode="fuzzy")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_flat_black_and_white_frames_give_finite_masks(value: float, mode: str) -> None:
    x = torch.full((2, 3, 64, 48), value)
    for lowlight in (False, True):
        masks, stats = dcp.dcp_masks(x, mode=mode, lowlight=lowlight)  # type: ignore[arg-type]
        assert masks.shape == (2, 5, 16, 12)
        assert torch.isfinite(masks).all()
        torch.testing.assert_close(masks.sum(1), torch.ones(2, 16, 12))
        assert torch.isfinite(stats.airlight).all() and (stats.airlight > 0).all()


def hazy_scene(batch: int = 1, size: int = 128) -> torch.Tensor:
    """Saturated colours (a dark channel near zero) under haze that thickens to the top."""
    clean = F.interpolate(torch.rand(batch, 3, 8, 8), size=(size, size), mode="nearest")
    clean = clean * (clean >= clean.amin(1, keepdim=True) + 0.01)  # zero each pixel's minimum
    depth = torch.linspace(1.0, 0.1, size).view(1, 1, size, 1)
    t = torch.exp(-2.0 * depth)
    return clean * t + 0.9 * (1 - t)


def test_masks_put_thick_haze_in_the_last_regions() -> None:
    masks, stats = dcp.dcp_masks(hazy_scene())
    region = masks.argmax(1)[0]
    assert region[:4].float().mean() > 3.0  # top rows: dense haze
    assert region[-4:].float().mean() < 1.0  # bottom rows: clear
    assert abs(stats.airlight.item() - 0.9) < 0.1


def test_passing_stats_back_reproduces_masks_and_overrides_measurement() -> None:
    x = hazy_scene(batch=2)
    masks, stats = dcp.dcp_masks(x)
    again, same = dcp.dcp_masks(x, stats=stats)
    assert torch.equal(masks, again)
    assert torch.equal(same.airlight, stats.airlight) and torch.equal(same.t_low, stats.t_low)
    darker = x * 0.7
    own, measured = dcp.dcp_masks(darker)
    forced, _ = dcp.dcp_masks(darker, stats=stats)
    assert not torch.equal(measured.airlight, stats.airlight)
    assert not torch.equal(own, forced)


def test_stats_of_the_wrong_batch_size_are_refused() -> None:
    _, stats = dcp.dcp_masks(hazy_scene(batch=2))
    with pytest.raises(InputError, match="statistics for 2 images"):
        dcp.dcp_masks(hazy_scene(batch=3), stats=stats)


def test_stats_index_one_image_or_a_slice() -> None:
    _, stats = dcp.dcp_masks(hazy_scene(batch=3))
    parts = [stats[i] for i in range(len(stats))]
    assert all(len(p) == 1 for p in parts)
    assert torch.equal(torch.cat([p.airlight for p in parts]), stats.airlight)
    assert torch.equal(stats[1:].t_high, stats.t_high[1:]) and torch.equal(
        stats[-1].t_low, stats.t_low[2:])


def test_batch_members_are_independent() -> None:
    x = torch.cat([hazy_scene(), torch.rand(1, 3, 128, 128) * 0.3])
    masks, _ = dcp.dcp_masks(x)
    first, _ = dcp.dcp_masks(x[:1])
    assert torch.equal(masks[:1], first)


def test_lowlight_flag_brightens_before_the_prior() -> None:
    dark = hazy_scene() * 0.1
    _, plain = dcp.dcp_masks(dark)
    _, lifted = dcp.dcp_masks(dark, lowlight=True)
    assert lifted.airlight.item() > 2 * plain.airlight.item()


def test_bfloat16_input_gives_float32_masks_close_to_float32_input() -> None:
    x = hazy_scene()
    masks, _ = dcp.dcp_masks(x)
    low, _ = dcp.dcp_masks(x.bfloat16())
    assert low.dtype == torch.float32
    assert (masks != low).any(1).float().mean() < 0.02


def test_bad_input_is_refused_with_a_clear_message() -> None:
    with pytest.raises(InputError, match="float"):
        dcp.dcp_masks(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(InputError, match="B×3×H×W"):
        dcp.dcp_masks(torch.zeros(3, 8, 8))


def test_compiles_with_fullgraph() -> None:
    x = hazy_scene()
    compiled = torch.compile(dcp.dcp_masks, fullgraph=True, backend="aot_eager")
    masks, _ = compiled(x, mode="soft")
    expected, _ = dcp.dcp_masks(x, mode="soft")
    torch.testing.assert_close(masks, expected)


def test_params_are_validated() -> None:
    with pytest.raises(ModelConfigError, match="odd patch"):
        dcp.DCPParams(patch=4)
