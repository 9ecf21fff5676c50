"""hdm.upsample: a local affine fit at low resolution, applied at full resolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hdm.errors import ConfigError
from hdm.upsample import (
    FittedToInput,
    apply_field,
    describe_window,
    fit_field,
    fit_to_input,
    reduced_size,
)


def _picture(height: int = 96, width: int = 128) -> torch.Tensor:
    """Smooth structure plus texture, so every window has variance to fit against."""
    torch.manual_seed(0)
    low = F.interpolate(torch.rand(1, 3, height // 8, width // 8), size=(height, width),
                        mode="bilinear", align_corners=False)
    return (0.7 * low + 0.3 * torch.rand(1, 3, height, width)).clamp(0, 1)


@pytest.mark.parametrize("fit", ["channel", "colour"])
def test_a_global_gain_and_offset_is_recovered_exactly_at_full_resolution(fit: str) -> None:
    x = _picture()
    gain, offset = torch.tensor([1.6, 1.2, 0.8]), torch.tensor([-0.1, 0.05, 0.2])
    target = x * gain.view(1, 3, 1, 1) + offset.view(1, 3, 1, 1)
    small = F.interpolate(x, size=(24, 32), mode="area")
    small_out = small * gain.view(1, 3, 1, 1) + offset.view(1, 3, 1, 1)
    got = apply_field(fit_field(small, small_out, fit=fit, eps=1e-8), x)  # type: ignore[arg-type]
    torch.testing.assert_close(got, target, atol=2e-3, rtol=0)


def test_only_the_colour_fit_carries_a_mix_of_channels() -> None:
    x = _picture()
    mix = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.3, 0.0, 0.7]])
    target = torch.einsum("oi,bihw->bohw", mix, x)
    small = F.interpolate(x, size=(24, 32), mode="area")
    small_out = torch.einsum("oi,bihw->bohw", mix, small)
    colour = apply_field(fit_field(small, small_out, fit="colour", eps=1e-8), x)
    channel = apply_field(fit_field(small, small_out, fit="channel", eps=1e-8), x)
    assert (colour - target).abs().mean() < 2e-3
    assert (channel - target).abs().mean() > 10 * (colour - target).abs().mean()


def test_full_resolution_detail_survives_a_smooth_effect() -> None:
    """The point of the fit: a brightening computed on a blurred small copy still returns the
    full frame's texture, which upsampling the small output itself loses."""
    x = _picture()
    target = (x * 1.5).clamp(0, 1)
    small = F.interpolate(x, size=(24, 32), mode="area")
    fitted = apply_field(fit_field(small, (small * 1.5).clamp(0, 1)), x)
    upsampled = F.interpolate((small * 1.5).clamp(0, 1), size=x.shape[-2:], mode="bilinear",
                              align_corners=False)
    assert (fitted - target).abs().mean() < 0.5 * (upsampled - target).abs().mean()


def test_batches_fit_each_frame_on_its_own() -> None:
    a, b = _picture(), _picture().flip(-1)
    small = F.interpolate(torch.cat([a, b]), size=(24, 32), mode="area")
    out = torch.cat([small[:1] * 0.5, small[1:] + 0.2])
    field = fit_field(small, out)
    both = apply_field(field, torch.cat([a, b]))
    torch.testing.assert_close(both[:1], apply_field(field[:1], a))
    torch.testing.assert_close(both[1:], apply_field(field[1:], b))


def test_reduced_size_keeps_the_aspect_and_never_enlarges() -> None:
    assert reduced_size(720, 1280, 96) == (96, 171)
    assert reduced_size(1280, 720, 96) == (171, 96)
    assert reduced_size(100, 200, 180) == (100, 200)


def test_an_unknown_fit_is_refused() -> None:
    with pytest.raises(ConfigError, match="fit must be one of"):
        fit_field(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), fit="cubic")  # type: ignore[arg-type]


def test_the_cpu_box_filter_matches_torch_pooling() -> None:
    """The fit's window means take OpenCV's box filter on a CPU without gradients, torch's
    pooling otherwise (training): the two agree, borders (clipped windows) included."""
    x = torch.rand(2, 12, 17, 23)
    fast = fit_field(x[:, :3], x[:, 3:6], fit="colour")
    slow = fit_field(x[:, :3].requires_grad_(), x[:, 3:6], fit="colour").detach()
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)


def _hazy_sky(height: int = 240, width: int = 640) -> torch.Tensor:
    """A flat, hazy sky over textured, hazy ground, and its dehazing by one transmission:
    a per-channel affine transform of the input (I - A) / t + A."""
    generator = torch.Generator().manual_seed(1)
    picture = torch.full((1, 3, height, width), 0.85)
    ground = height - height // 2
    texture = F.interpolate(torch.rand(1, 3, ground // 4, width // 4, generator=generator),
                            size=(ground, width), mode="bilinear", align_corners=False)
    picture[..., height // 2 :, :] = 0.45 + 0.3 * texture
    return picture


def test_the_wide_fit_keeps_a_dehazing_and_drops_a_blotch_the_input_cannot_explain() -> None:
    x = _hazy_sky()
    light, t = 0.9, 0.6
    dehazed = ((x - light) / t + light).clamp(0, 1)
    rows, cols = torch.meshgrid(torch.arange(240.0), torch.arange(640.0), indexing="ij")
    blotch = 0.25 * torch.exp(-((rows - 50) ** 2 + (cols - 300) ** 2) / (2 * 8.0 ** 2))
    painted = dehazed - blotch  # a soft dark patch in the flat sky
    got = apply_field(fit_to_input(x, painted, window=1 / 32), x)
    sky = (slice(None), slice(None), slice(20, 80), slice(260, 340))
    assert (got - dehazed)[sky].abs().max() < 0.25 * blotch.max()  # the patch is gone
    ground = (slice(None), slice(None), slice(140, 220), slice(40, 600))
    assert (got - dehazed)[ground].abs().mean() < 0.01  # the recovered contrast stays


class _Contrast(torch.nn.Module):
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return (batch * 1.4 - 0.2).clamp(0, 1)


def test_fitting_to_the_input_is_made_small_but_applied_at_full_size() -> None:
    """Pictures longer than 512 pixels are fitted on a copy; the result has the input's size and
    its full-resolution texture, and the module runs a model that way."""
    x = _hazy_sky(400, 1100)
    out = FittedToInput(_Contrast(), 1 / 32)(x)
    assert out.shape == x.shape
    ground = (slice(None), slice(None), slice(250, 380), slice(40, 1060))
    assert (out - (x * 1.4 - 0.2))[ground].abs().mean() < 0.005


def test_fine_faint_texture_of_a_large_frame_keeps_its_dehazed_contrast() -> None:
    """Texture of 1-2 pixels and 8 levels under thick haze (transmission 0.3) at 1920 pixels:
    the window statistics come from the full frame, so the copy the fit is made on, 3.75× smaller,
    does not average the texture away and flatten it."""
    generator = torch.Generator().manual_seed(2)
    scene = 0.5 + 0.03 * torch.randn(1, 3, 1080, 1920, generator=generator)
    t, light = 0.3, 0.9
    hazy = scene * t + light * (1 - t)
    got = apply_field(fit_to_input(hazy, scene, window=1 / 32), hazy)
    kept = (got - got.mean()).std() / (scene - scene.mean()).std()
    assert kept > 0.85  # eps costs 11% here; the hazy input has 0.3 of it, the old fit 0.04


@pytest.mark.parametrize("window", [0.0, -0.1, 0.6])
def test_a_fit_window_outside_the_picture_is_refused(window: float) -> None:
    with pytest.raises(ConfigError, match="window"):
        fit_to_input(_picture(), _picture(), window=window)


def test_a_fit_window_is_described_as_people_write_it() -> None:
    assert [describe_window(w) for w in (1 / 32, 0.05, 0.3)] == ["1/32", "1/20", "0.3"]
