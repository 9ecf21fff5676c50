"""hdm/scene.py: the task a picture needs, from its statistics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hdm.data import read_rgb
from hdm.scene import classify, scene_stats


@pytest.mark.parametrize(("picture", "task"), [
    ("dehaze/ohaze_subset/hazy/35_outdoor_hazy.jpg", "dehaze"),
    ("lowlight/lol_eval10/low/1.png", "lowlight"),
    ("derain/rain100h_mspfn_subset/rainy/1.png", "derain"),
    ("derain/rain100l_prenet_subset/gt/norain-003.png", "none"),
    ("derain/rain100l_prenet_subset/gt/norain-001.png", "dehaze"),  # a known miss: pinned
])
def test_known_pictures_get_their_task(shared_data: Path, picture: str, task: str) -> None:
    """Pinned choices, a miss among them (a clean, pale picture taken for haze: the limit
    benchmarks/bench_scene.py measures), so that a change of the statistics shows here."""
    assert classify(scene_stats(read_rgb(shared_data / picture))) == task


def test_a_picture_near_a_threshold_keeps_the_task_it_has(shared_data: Path) -> None:
    """Dusk at the low-light threshold: a stream already in low light stays there, one that
    is not does not enter it; well past it both agree."""
    stats = scene_stats(read_rgb(sorted((shared_data / "lowlight/lol_eval10/high").glob("*"))[0]))
    at_dusk = replace(stats, brightness=0.27, streaks=1.0)
    assert classify(at_dusk, "lowlight") == "lowlight"
    assert classify(at_dusk, "none") != "lowlight"
    assert classify(replace(at_dusk, brightness=0.1), "none") == "lowlight"
    assert classify(replace(at_dusk, brightness=0.6), "lowlight") != "lowlight"
