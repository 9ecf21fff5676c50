"""Train `hdm` and `hdm-s` for the three tasks at once, one process each, on one GPU for a fixed
wall-clock budget; the first training lease of a GPU machine runs this (benchmarks/gpu_train.sh).

    python -m benchmarks.gpu_train --data train_data --out $OUT --seconds 400
    python -m benchmarks.gpu_train --data DIR --out DIR --seconds 5 --device cpu --small   # dry run

Each model trains with the recipe the CPU runs settled on (RECIPES: data mix, output mode, colour
term), bf16 autocast on CUDA, larger crops and batches than the CPU allowed, validation on
held-out training pairs every ``--val-every`` steps, keeping the best. The learning rate decays
over the time budget. What comes back in ``--out`` (at most 8 files): the six best checkpoints
``TASK-PRESET.safetensors``, ``train.log`` (every process's log, loss and validation curves,
steps/s) and ``train_summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hdm.train import TrainConfig, train

# Folders under the packed data root (gpu_train.sh prepare keeps ../shared/train's layout).
RECIPES: dict[str, dict[str, Any]] = {
    "dehaze": {"paired": ["dehaze/nyu_aod_synthetic", "dehaze/reside_its_sots_samples",
                          "dehaze/revide_style_real_pairs", "dehaze/ohaze_27_41"],
               "clean": ["clean/bsds500_train_subset", "clean/kodak24"],
               "output": "image", "colour_weight": 0.5},
    "derain": {"paired": ["derain/rain100l_prenet_train", "derain/rain100h_mspfn_train",
                          "derain/jordere_small_heavy"],
               "clean": ["clean/bsds500_train_subset", "clean/kodak24"],
               "output": "residual", "colour_weight": 0.0},
    "lowlight": {"paired": ["lowlight/lol_our485_subset"],
                 "clean": ["clean/bsds500_train_subset", "clean/kodak24"],
                 "output": "gain", "colour_weight": 0.5},
}
# (batch, crop) per preset on the GPU; --small for the CPU dry run.
SIZES = {"hdm": (8, 256), "hdm-s": (16, 256)}
SMALL = (2, 48)


def job_config(task: str, preset: str, args: argparse.Namespace, out: Path) -> TrainConfig:
    recipe = RECIPES[task]
    batch, crop = SMALL if args.small else SIZES[preset]
    return TrainConfig(
        task=task, out=out, preset=preset, device=args.device,
        paired=[args.data / p for p in recipe["paired"] if (args.data / p).is_dir()],
        clean=[args.data / c for c in recipe["clean"] if (args.data / c).is_dir()],
        output=recipe["output"], colour_weight=recipe["colour_weight"],
        batch=batch, crop=crop, lr=5e-4, steps=1_000_000, time_limit_s=args.seconds,
        val_every=args.val_every, workers=args.workers,
        warmup=min(200, max(2, args.val_every)),
    )


def run_job(spec: str) -> None:
    """Child process: one training run; train() writes its summary beside the checkpoint."""
    job = json.loads(spec)
    args = argparse.Namespace(**{**job["args"], "data": Path(job["args"]["data"])})
    train(job_config(job["task"], job["preset"], args, Path(job["out"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("train_data"))
    parser.add_argument("--out", type=Path, help="folder for the results (required)")
    parser.add_argument("--seconds", type=float, default=400.0, help="training time per model")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default="hdm,hdm-s")
    parser.add_argument("--tasks", default="dehaze,derain,lowlight")
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2, help="data loaders per model")
    parser.add_argument("--small", action="store_true", help="tiny batches and crops (dry run)")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        run_job(args.job)
        return
    if args.out is None:
        parser.error("--out is required")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hdm-train-"))  # state files stay out of --out
    shared = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
              if k not in ("job", "out")}
    threads = max(1, (os.cpu_count() or 2) // 6)
    # No progress bars in the logs: validation lines carry the curves.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1",
           "TQDM_DISABLE": "1"}
    jobs = []
    for task in args.tasks.split(","):
        for preset in args.models.split(","):
            name = f"{task}-{preset}"
            spec = json.dumps({"task": task, "preset": preset, "args": shared,
                               "out": str(work / f"{name}.safetensors")})
            log = (work / f"{name}.log").open("w")
            process = subprocess.Popen([sys.executable, "-m", "benchmarks.gpu_train", "--job",
                                        spec], stdout=log, stderr=subprocess.STDOUT,
                                       env=env)
            jobs.append((name, process, log))
            print(f"started {name} (pid {process.pid})", flush=True)
    started = time.monotonic()
    results: dict[str, Any] = {"seconds_per_model": args.seconds, "device": args.device,
                               "configs": {}, "models": {}}
    for name, process, log in jobs:
        process.wait()
        log.close()
        summary = work / f"{name}.json"  # train() writes it at the end
        finished = process.returncode == 0 and summary.is_file()
        results["models"][name] = (json.loads(summary.read_text()) if finished
                                   else {"error": f"exit {process.returncode}"})
        task, preset = name.split("-", 1)
        results["configs"][name] = {k: str(v) for k, v in
                                    asdict(job_config(task, preset, args, Path(name))).items()}
        checkpoint = work / f"{name}.safetensors"
        if checkpoint.is_file():
            shutil.copy2(checkpoint, args.out / checkpoint.name)
        best = results["models"][name].get("best_validation_psnr")
        print(f"{name}: exit {process.returncode}, best validation PSNR {best}", flush=True)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    with (args.out / "train.log").open("a") as combined:
        for name, _, _ in jobs:
            combined.write(f"\n===== {name}\n")
            combined.write((work / f"{name}.log").read_text(errors="replace"))
    (args.out / "train_summary.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    failed = [n for n, r in results["models"].items() if "error" in r]
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (see train.log)")


if __name__ == "__main__":
    main()
