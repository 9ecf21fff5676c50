"""What ``--task auto`` chooses, measured honestly: the thresholds of hdm/scene.py chosen on one
half of ../shared/data's sets and of the ``--clean`` folders (benchmarks/scene_sets.py: seeded,
split by scene), the accuracy reported on the other half with a confusion matrix, then the task
chosen frame by frame with hysteresis on the shared clips (none of them chosen on).

    PYTHONPATH=. python -m benchmarks.bench_scene [--data ../shared/data]
        [--clean ../shared/train/clean/kodak24 ...] [--json F]

The chosen thresholds are compared with the shipped ones (hdm/scene.py's THRESHOLDS); the held-out
figures are the shipped ones' where they differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.scene_sets import CLIPS, SETS, Picture, pictures
from hdm.scene import SCENE_TASKS, THRESHOLDS, SceneTask, Thresholds, classify, scene_stats
from streamer.engine.scene import follow_scene
from streamer.engine.temporal import TaskMemory
from streamer.sources.video import VideoSource

STATS_OF = {"dark": "brightness", "streaks": "streaks", "residual": "residual",  # threshold ->
            "black": "black", "contrast": "contrast", "colourful": "colourfulness"}  # its stat
Confusion = dict[SceneTask, dict[SceneTask, int]]


def confusion(chosen: Iterable[tuple[SceneTask, SceneTask]]) -> Confusion:
    """Rows: the true task; columns: the one chosen."""
    counts = Counter(chosen)
    return {t: {c: counts[t, c] for c in SCENE_TASKS} for t in SCENE_TASKS}


def right_by_task(matrix: Confusion) -> dict[SceneTask, float]:
    return {t: row[t] / sum(row.values()) for t, row in matrix.items() if sum(row.values())}


def _score(pics: Sequence[Picture], thresholds: Thresholds) -> tuple[float, float]:
    """The mean over tasks of each task's accuracy, itself the mean of its sets' (each task and
    each set counts the same, however many pictures it has: 144 synthetic indoor hazes do not
    outvote 7 real ones), then the worst task's, to break ties."""
    right: dict[tuple[SceneTask, str], list[bool]] = {}
    for p in pics:
        right.setdefault((p.task, p.folder), []).append(classify(p.stats, None, thresholds)
                                                        == p.task)
    by_task: dict[SceneTask, list[float]] = {}
    for (task, _), hits in right.items():
        by_task.setdefault(task, []).append(float(np.mean(hits)))
    means = [float(np.mean(v)) for v in by_task.values()]
    return float(np.mean(means)), min(means)


def choose(pics: Sequence[Picture], start: Thresholds = THRESHOLDS, rounds: int = 5
           ) -> Thresholds:
    """Thresholds that score best on ``pics``: each in turn set to the best of 40 quantiles of
    its statistic, until a round changes none (coordinate ascent)."""
    best, score = start, _score(pics, start)
    for _ in range(rounds):
        before = best
        for name, stat in STATS_OF.items():
            values = [getattr(p.stats, stat) for p in pics]
            for cut in np.unique(np.round(np.quantile(values, np.linspace(0, 1, 41)), 3)):
                candidate = dataclasses.replace(best, **{name: float(cut)})
                if (new := _score(pics, candidate)) > score:
                    best, score = candidate, new
        if best == before:
            break
    return best


def _table(title: str, pics: Sequence[Picture], thresholds: Thresholds) -> Confusion:
    """Per set and overall: what was chosen, right or not; the confusion matrix returned."""
    print(f"\n{title}\n{'set':40s} {'task':9s} " + " ".join(f"{t:>8s}" for t in SCENE_TASKS)
          + "  right")
    chosen = [(p.task, classify(p.stats, None, thresholds)) for p in pics]
    for folder in dict.fromkeys(p.folder for p in pics):
        mine = [c for p, c in zip(pics, chosen, strict=True) if p.folder == folder]
        task = next(p.task for p in pics if p.folder == folder)
        counts = Counter(c for _, c in mine)
        print(f"{folder:40s} {task:9s} " + " ".join(f"{counts[t]:8d}" for t in SCENE_TASKS)
              + f"  {100 * counts[task] / len(mine):4.0f}%")
    matrix = confusion(chosen)
    print("confusion (rows true, columns chosen): " + "; ".join(
        f"{t}: " + " ".join(str(n) for n in row.values()) for t, row in matrix.items()))
    print("right, by task: " + _percent(right_by_task(matrix)))
    return matrix


def _percent(right: dict[SceneTask, float]) -> str:
    return ", ".join(f"{t} {100 * r:.0f}%" for t, r in right.items())


@dataclass(frozen=True)
class ClipChoices:
    truth: SceneTask
    frames: dict[str, int]  # frames by the task they ran
    switches: int
    right: float  # the share of frames that ran the true task


def clip_choices(path: Path, task: SceneTask) -> ClipChoices:
    """A clip's frames through the hysteresis ``--task auto`` runs (engine/scene.py)."""
    source = VideoSource(str(path))
    source.open()
    memory = TaskMemory()
    for frame in source.frames():
        follow_scene(scene_stats(frame.image), memory)
    return ClipChoices(task, memory.frames, memory.switches,
                       memory.frames.get(task, 0) / max(1, sum(memory.frames.values())))


def ms_per_frame(width: int, runs: int = 50) -> float:
    """Median time of scene_stats on a 16:9 frame ``width`` pixels wide (its content hardly
    matters: every step is a filter or a sort over the whole thumbnail)."""
    image = np.random.default_rng(0).integers(0, 256, (width * 9 // 16, width, 3), np.uint8)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        scene_stats(image)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--train", type=Path, default=Path("../shared/train"),
                        help="training sets, chosen on (their clear pictures split too)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pics = pictures(args.data, args.train if args.train.is_dir() else None)
    if not any(p.held_out for p in pics) or all(p.held_out for p in pics):
        parser.error(f"no sets of benchmarks/scene_sets.py under {args.data}")
    chosen = choose([p for p in pics if not p.held_out])
    print(f"chosen on {sum(not p.held_out for p in pics)} pictures: {chosen}")
    print(f"shipped: {THRESHOLDS}" + (" (the same)" if chosen == THRESHOLDS else
                                      " (differs: the tables below are the shipped ones')"))
    result: dict[str, object] = {"chosen": dataclasses.asdict(chosen),
                                 "shipped": dataclasses.asdict(THRESHOLDS)}
    for part, held in (("choose", False), ("held_out", True)):
        mine = [p for p in pics if p.held_out == held]
        matrix = _table(f"{part} ({len(mine)} pictures)", mine, THRESHOLDS)
        shared = right_by_task(confusion((p.task, classify(p.stats)) for p in mine
                                         if p.folder in SETS))  # ../shared/data's own
        print("right, by task, ../shared/data only: " + _percent(shared))
        result[part] = {"pictures": [(p.folder, p.name) for p in mine], "confusion": matrix,
                        "right_by_task": right_by_task(matrix), "right_by_task_shared": shared}
    print("\nclips, frame by frame with hysteresis:")
    clips = {clip: clip_choices(args.data / clip, task) for clip, task in CLIPS.items()
             if (args.data / clip.replace("%05d", "00001")).is_file()}
    for clip, got in clips.items():
        print(f"{clip:45s} {got.truth:9s} {got.frames} switches {got.switches} "
              f"right {100 * got.right:.0f}%")
    result["clips"] = {clip: dataclasses.asdict(got) for clip, got in clips.items()}
    timing = {f"{w}px": ms_per_frame(w) for w in (256, 1280, 1920)}
    print("scene_stats per frame: " + ", ".join(f"{k} {v:.2f} ms" for k, v in timing.items()))
    result["ms_per_frame"] = timing
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
