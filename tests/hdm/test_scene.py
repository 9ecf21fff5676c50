"""hdm/scene.py: the task a picture needs, from its statistics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hdm.data import read_rgb
from hdm.scene import THRESHOLDS, classify, scene_stats, thumbnail


@pytest.mark.parametrize(("picture", "task"), [
    ("dehaze/ohaze_subset/hazy/35_outdoor_hazy.jpg", "dehaze"),
    ("dehaze/real_hazy_classic/canyon.png", "dehaze"),
    ("lowlight/lol_eval10/low/1.png", "lowlight"),
    ("derain/rain100h_mspfn_subset/rainy/1.png", "derain"),
    ("derain/rain100l_prenet_subset/gt/norain-001.png", "none"),  # pale, once taken for haze
    ("lowlight/lol_eval10/high/1.png", "none"),
    ("lowlight/lol_eval10/high/79.png", "dehaze"),  # a known miss: a white kitchen, pinned
])
def test_known_pictures_get_their_task(shared_data: Path, picture: str, task: str) -> None:
    """Pinned choices, a miss among them (a clean, pale picture taken for haze: the limit
    benchmarks/bench_scene.py measures), so that a change of the statistics shows here."""
    assert classify(scene_stats(read_rgb(shared_data / picture))) == task


def test_a_veil_of_airlight_moves_every_haze_statistic_towards_haze(shared_data: Path) -> None:
    """The haze model I = J t + A (1 - t) on a clear picture: the black level rises, the
    textured blocks' contrast and the colour fall, and the task becomes dehaze."""
    clear = read_rgb(shared_data / "derain/rain100l_prenet_subset/gt/norain-001.png")
    hazy = (clear * 0.4 + 255 * 0.85 * 0.6).astype(np.uint8)
    before, after = scene_stats(clear), scene_stats(hazy)
    assert after.black > before.black + 0.3
    assert after.contrast < before.contrast / 2
    assert after.colourfulness < before.colourfulness / 2
    assert (classify(before), classify(after)) == ("none", "dehaze")


def test_a_thumbnail_is_256_wide_and_keeps_the_mean_in_any_depth() -> None:
    """The whole-factor shrink then the rest: the size asked for, the aspect kept, an average
    (no pixel dropped); 16-bit frames give the statistics 8-bit ones do."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    small = thumbnail(frame)
    assert small.shape == (144, 256, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(frame.mean())) < 0.5
    assert small.std() < frame.std() / 3  # averaged, not sampled
    deep = scene_stats(frame.astype(np.uint16) * 257)
    assert deep.brightness == pytest.approx(scene_stats(frame).brightness, abs=1e-3)


def test_a_picture_near_a_threshold_keeps_the_task_it_has(shared_data: Path) -> None:
    """Dusk at the low-light threshold: a stream already in low light stays there, one that
    is not does not enter it; well past it both agree."""
    stats = scene_stats(read_rgb(sorted((shared_data / "lowlight/lol_eval10/high").glob("*"))[0]))
    at_dusk = replace(stats, brightness=THRESHOLDS.dark * 1.05, streaks=1.0)
    assert classify(at_dusk, "lowlight") == "lowlight"
    assert classify(at_dusk, "none") != "lowlight"
    assert classify(replace(at_dusk, brightness=0.1), "none") == "lowlight"
    assert classify(replace(at_dusk, brightness=0.6), "lowlight") != "lowlight"
