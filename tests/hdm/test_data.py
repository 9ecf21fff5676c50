"""Paired folder layouts, synthetic degradations and augmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hdm.data import (
    PairedImages,
    SyntheticPairs,
    add_haze,
    add_lowlight,
    add_rain,
    find_pairs,
    sky_mask,
)
from hdm.errors import ModelConfigError


def write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


@pytest.mark.parametrize(
    ("inputs", "targets", "input_name", "target_name"),
    [
        ("hazy", "clear", "1400_3.png", "1400.png"),  # SOTS
        ("rainy", "gt", "rain-001.png", "norain-001.png"),  # Rain100
        ("low", "high", "22.png", "22.jpg"),  # LOL, different formats
        ("hazy", "gt", "35_outdoor_hazy.jpg", "35_outdoor_GT.jpg"),  # O-HAZE
        ("input", "target", "a.png", "a.png"),  # generic
    ],
)
def test_layouts_are_matched_by_name(
    tmp_path: Path, inputs: str, targets: str, input_name: str, target_name: str
) -> None:
    image = np.full((20, 30, 3), 128, np.uint8)
    write(tmp_path / inputs / input_name, image)
    write(tmp_path / targets / target_name, image)
    assert find_pairs(tmp_path) == [(tmp_path / inputs / input_name,
                                     tmp_path / targets / target_name)]


def test_unmatched_and_unknown_layouts_are_clear_errors(tmp_path: Path) -> None:
    write(tmp_path / "hazy" / "1.png", np.zeros((8, 8, 3), np.uint8))
    write(tmp_path / "gt" / "2.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ModelConfigError, match="no matching target"):
        find_pairs(tmp_path)
    with pytest.raises(ModelConfigError, match="not a paired folder"):
        find_pairs(tmp_path / "hazy")


def test_paired_crops_are_aligned_and_augmented(tmp_path: Path) -> None:
    gradient = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (48, 1, 3))
    write(tmp_path / "low" / "1.png", gradient // 4)
    write(tmp_path / "high" / "1.png", gradient)
    data = PairedImages([tmp_path], crop=16, augment=True, repeat=10)
    assert len(data) == 10
    for i in range(10):
        low, high = data[i]
        assert low.shape == high.shape == (3, 16, 16)
        torch.testing.assert_close(low * 4, high, atol=4 / 255, rtol=0)


def test_augmentation_keeps_the_picture_upright(tmp_path: Path) -> None:
    """Flipped left to right now and then, never turned: the sky stays at the top."""
    picture = np.zeros((48, 48, 3), np.uint8)
    picture[:24] = 255  # sky
    picture[24:, :8] = 255  # a white patch at the bottom left, to see the flips
    write(tmp_path / "a.png", picture)
    data = SyntheticPairs([tmp_path], lambda clean, rng: clean, crop=48, repeat=1)
    flipped = 0
    for _ in range(40):
        _, clean = data[0]
        assert clean[:, :24].mean() > 0.99 and clean[:, 24:, 16:32].mean() < 0.01
        flipped += int(clean[:, 30:, -4:].mean() > 0.99)
    assert 5 <= flipped <= 35


@pytest.mark.parametrize("degrade", [add_haze, add_rain, add_lowlight])
def test_degradations_change_images_the_expected_way(degrade: object) -> None:
    rng = np.random.default_rng(0)
    clean = (np.random.default_rng(1).random((64, 64, 3)) * 200 + 20).astype(np.uint8)
    out = degrade(clean, rng)  # type: ignore[operator]
    assert out.shape == clean.shape and out.dtype == np.uint8
    if degrade is add_lowlight:
        assert out.mean() < 0.5 * clean.mean()
    else:  # haze and rain add light
        assert out.astype(float).mean() > clean.astype(float).mean()


def test_rain_of_one_picture_falls_one_way() -> None:
    """Layers share a fall direction (as real rain does), so the streaks' gradients agree:
    the structure tensor's coherence stays high, where crossing layers would lower it. Drizzle
    specks (a quarter of the pictures) have no direction and may lower it on a few."""
    coherences = []
    for seed in range(40):
        rainy = add_rain(np.zeros((128, 128, 3), np.uint8), np.random.default_rng(seed))
        gy, gx = np.gradient(rainy.astype(float).mean(2))
        xx, xy, yy = (gx * gx).sum(), (gx * gy).sum(), (gy * gy).sum()
        coherences.append(np.sqrt((xx - yy) ** 2 + 4 * xy * xy) / (xx + yy))
    assert sum(c > 0.55 for c in coherences) >= 36 and np.median(coherences) > 0.7


def test_haze_follows_a_given_depth() -> None:
    clean = np.zeros((32, 32, 3), np.uint8)
    depth = np.tile(np.linspace(0, 1, 32, dtype=np.float32)[None], (32, 1))
    hazy = add_haze(clean, np.random.default_rng(0), depth=depth)
    assert hazy[:, -1].mean() > hazy[:, 0].mean() + 50  # far side hazier


def _band_of_sky(size: int = 96) -> np.ndarray:
    """Grey texture, with a smooth band of the same grey from the top edge to the bottom at the
    left and a smooth bright patch that does not reach the top (a wall, not sky) at the right."""
    picture = (np.random.default_rng(3).random((size, size, 3)) * 56 + 100).astype(np.uint8)
    picture[:, : size // 4] = 128
    picture[size // 2 :, -size // 4 :] = 200
    return picture


def test_sky_is_smooth_bright_and_reaches_the_top() -> None:
    sky = sky_mask(_band_of_sky())
    assert sky[:, 4:20].min() > 0.9  # the band, top to bottom
    assert sky[60:, -20:].max() < 0.1  # the wall
    assert sky[:, 32:64].max() < 0.1  # texture


def test_synthetic_haze_is_densest_in_the_sky() -> None:
    """Even at the bottom of the picture, where the random depth is near, sky is far: the band
    takes on the airlight, the texture of the same grey beside it changes far less."""
    clean = _band_of_sky()
    for seed in range(12):
        hazy = add_haze(clean, np.random.default_rng(seed)).astype(float)
        change = np.abs(hazy - clean)[-16:]
        if change.max() == 0:  # the clear share: no haze at all
            continue
        assert change[:, 4:20].mean() > 1.3 * change[:, 32:64].mean()


def test_a_picture_of_sky_alone_is_all_far() -> None:
    """No near pixel to leave clear: an overcast sky filling the crop still gets its haze."""
    sky = np.full((64, 64, 3), 180, np.uint8)
    hazed = [add_haze(sky, np.random.default_rng(seed)) for seed in range(8)]
    assert sum(int(np.abs(h.astype(int) - 180).max() > 0) for h in hazed) >= 5


def test_synthetic_pairs_degrade_the_whole_picture_then_crop(tmp_path: Path) -> None:
    """The haze's depth and sky are the picture's: a crop's top edge is not the sky's."""
    write(tmp_path / "a.png", np.full((40, 60, 3), 90, np.uint8))
    seen: list[tuple[int, ...]] = []

    def degrade(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        seen.append(clean.shape)
        return clean // 2

    degraded, clean = SyntheticPairs([tmp_path], degrade, crop=32)[0]
    assert seen == [(40, 60, 3)] and degraded.shape == clean.shape == (3, 32, 32)
    torch.testing.assert_close(degraded, (clean * 255 // 2) / 255)


def test_synthetic_pairs_degrade_clean_crops(tmp_path: Path) -> None:
    write(tmp_path / "a.png", np.full((40, 40, 3), 200, np.uint8))
    data = SyntheticPairs([tmp_path], add_lowlight, crop=32, repeat=3)
    degraded, clean = data[0]
    assert len(data) == 3 and degraded.shape == clean.shape == (3, 32, 32)
    means = [data[0][0].mean().item() for _ in range(28)]
    # Mostly far darker; now and then well exposed: the clean picture with a little noise.
    well_exposed = [m for m in means if abs(m - clean.mean().item()) < 0.02]
    assert 1 <= len(well_exposed) <= 10
    assert all(m < 0.6 * clean.mean().item() for m in means if m not in well_exposed)
