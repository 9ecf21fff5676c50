"""hdm/defects.py: each measure sees the defect it names, and nothing on an untouched picture."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from hdm.data import read_rgb, to_tensor
from hdm.defects import defects


def _photo(shared_data: Path) -> torch.Tensor:
    image = read_rgb(shared_data / "dehaze/real_hazy_classic/canyon.png")
    return to_tensor(cv2.resize(image, (512, 340), interpolation=cv2.INTER_AREA)).unsqueeze(0)


def test_an_untouched_picture_has_no_defect(shared_data: Path) -> None:
    x = _photo(shared_data)
    found = defects(x, x.clone())
    assert found["neutral_cast"] == 0 and found["blotches"] == 0
    assert found["streaks_left"] == 100 and found["shadows_crushed"] == 0


def test_each_defect_is_seen(shared_data: Path) -> None:
    flat = torch.full((1, 3, 340, 512), 0.6)
    blotched = flat.clone()
    blotched[..., 100:124, 200:232] -= 0.15  # a dark patch on a flat wall
    share = 100 * 24 * 32 / (340 * 512)  # of the flat pixels: the patch, whole
    assert 0.8 * share < defects(flat, blotched)["blotches"] <= share
    purple = flat.clone()
    purple[:, 0] += 0.03
    purple[:, 2] += 0.03  # red and blue up: a purple cast on grey
    assert 4 < defects(flat, purple)["neutral_cast"] < 8  # green 5 levels below the mean
    x = _photo(shared_data)
    rainy = x.clone()
    rng = np.random.default_rng(0)
    for column in rng.integers(0, 512, 120):
        top = int(rng.integers(0, 300))
        rainy[..., top : top + 30, column] = 0.95  # thin bright vertical streaks
    assert defects(x, rainy)["streaks_left"] > 150
    assert defects(x, x * 0.02)["shadows_crushed"] > 50
