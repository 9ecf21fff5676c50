"""Where a reduced inference size starts to harm one task: paired quality at each shorter side
the network sees, against the input in the same run, with the engine's cost of that side.

    python -m benchmarks.bench_inference_size --task derain [--model hdm-s]
        [--sides 96,144,192,240,288,360,full] [--size 1280x720] [--data ../shared/data]
        [--limit 20] [--json benchmarks/results/inference_size.json]

Quality: PSNR/SSIM against ground truth on the task's paired sets, each photo at its own size
with the network at the row's shorter side (``full`` where the photo is no larger), one photo
at a time with a fresh temporal state, fp32 eager (as bench_realtime scores quality). Unlike
bench_realtime's quality, nothing is rescaled: a rain streak spans as many pixels here as it
did in the camera's frame, and whether the small copy still shows it is the question.

Cost: milliseconds per frame of the engine the CLI builds (backend ``auto``) at the side, on
``--size`` frames of noise (no decode, no encoder: the engine alone, its motion estimate at its
worst), batch 4, the best of three after a warm-up; the frame budget at 25 fps on this device
(resolution.ENGINE_SHARE) for comparison. bench_realtime gives the pipeline's frames per
second at a chosen size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bench_realtime import QUALITY_BACKEND, _engine, paired_quality
from hdm.data import find_pairs, read_rgb, to_tensor
from hdm.evaluate import PAIRED_SETS
from hdm.metrics import psnr, ssim
from streamer.engine import Engine, TemporalState
from streamer.engine.resolution import DEFAULT_RATE, ENGINE_SHARE

BATCH = 4


def input_quality(task: str, data: Path, limit: int) -> dict[str, dict[str, float]]:
    """The baseline: each paired set's input scored against its ground truth."""
    results = {}
    for label, folder in PAIRED_SETS[task]:
        if not (data / folder).is_dir():
            continue
        scores: dict[str, list[float]] = {"psnr": [], "ssim": []}
        for degraded, clean in find_pairs(data / folder)[:limit]:
            x, target = (to_tensor(read_rgb(p)).unsqueeze(0) for p in (degraded, clean))
            scores["psnr"].append(psnr(x, target).item())
            scores["ssim"].append(ssim(x, target).item())
        results[label] = {k: float(np.mean(v)) for k, v in scores.items()}
    return results


def engine_ms(engine: Engine, width: int, height: int) -> float:
    """Milliseconds per frame of ``engine`` on batches of random frames of this size."""
    frames = [np.random.default_rng(i).integers(0, 256, (height, width, 3), np.uint8)
              for i in range(BATCH)]
    state = TemporalState()
    engine.enhance(frames, state)  # export, compilation, allocation
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        engine.enhance(frames, state)
        best = min(best, time.perf_counter() - started)
    return best * 1e3 / BATCH


def _side(value: str) -> int | str:
    return value if value == "full" else int(value)


def _table(report: dict[str, Any]) -> str:
    sets = list(report["input"])
    head = ["network sees", *sets, f"ms a frame at {report['size']}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| input | " + " | ".join(f"{report['input'][s]['psnr']:.2f}" for s in sets)
             + " | |"]
    for row in report["rows"]:
        cells = [f"{row['paired'][s]['psnr']:.2f}" if s in row["paired"] else "-"
                 for s in sets]
        lines.append(f"| {row['side']} | " + " | ".join(cells) + f" | {row['ms']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="derain", choices=sorted(PAIRED_SETS))
    parser.add_argument("--model", default="hdm-s")
    parser.add_argument("--sides", default="96,144,192,240,288,360,full")
    parser.add_argument("--size", default="1280x720", help="frame size the cost is timed at")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=20, help="photos per set")
    parser.add_argument("--json", type=Path, default=Path("out/bench_inference_size.json"))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    budget = ENGINE_SHARE.get(args.device.split(":")[0], ENGINE_SHARE["cpu"]) / DEFAULT_RATE
    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"torch {torch.get_num_threads()} threads",
        "torch": torch.__version__, "task": args.task, "model": args.model,
        "size": args.size, "budget_ms_at_25fps": budget * 1e3,
        "input": input_quality(args.task, args.data, args.limit), "rows": []}
    for value in args.sides.split(","):
        side = _side(value)
        started = time.perf_counter()
        built: dict[int | str, Engine] = {}

        def engine_for(image: np.ndarray, side: int | str = side,
                       built: dict[int | str, Engine] = built) -> Engine:
            fits = side == "full" or int(side) >= min(image.shape[:2])
            key = "full" if fits else side
            if key not in built:
                built[key] = _engine(args.task, args.model, key, args.device, QUALITY_BACKEND)
            return built[key]

        row = {"side": value, "paired": paired_quality(args.task, engine_for, args.data,
                                                      args.limit),
               "ms": engine_ms(_engine(args.task, args.model, side, args.device),
                               width, height)}
        row["seconds"] = time.perf_counter() - started
        report["rows"].append(row)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"{value}: " + ", ".join(f"{k} {v['psnr']:.2f}" for k, v in row["paired"].items())
              + f"; {row['ms']:.1f} ms a frame at {args.size}", flush=True)
    print(f"{report['machine']}; budget at 25 fps {budget * 1e3:.1f} ms a frame")
    print(_table(report))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
