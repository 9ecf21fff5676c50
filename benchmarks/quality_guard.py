"""Quality guard: optimised engine configurations against fp32 eager on the paired sets.

    python -m benchmarks.quality_guard [--data ../shared/data] [--device cuda]
                                       [--limit N] [--crop 320] [--json out/quality_guard.json]

For every task with shipped weights and each of its paired evaluation sets, the mean PSNR (RGB)
of the reference (the shipped model in fp32 eager, head unfused, NCHW, eager masks) and of each
optimised configuration the engine can run on the device. The guard passes when every
configuration stays within 0.05 dB of the reference on every set. Still images are not a video,
so mask smoothing is off. ``--crop N`` compares centre N×N crops: one shape, so a compiled
configuration compiles once per task instead of once per image size (0: whole images, as the
evaluation scores them). Exit status 1 when the guard fails; the JSON is rewritten after every
row.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hdm.data import find_pairs, read_rgb, to_tensor
from hdm.evaluate import PAIRED_SETS
from hdm.metrics import psnr
from hdm.weights import DEFAULT_WEIGHTS
from streamer.engine import Engine, EngineSettings, Optimisations
from streamer.engine.settings import Backend, Precision, Task
from streamer.engine.temporal import SmoothingParams, StabiliserParams

TOLERANCE_DB = 0.05
_UNOPTIMISED = Optimisations(fuse_head=False, channels_last=False, compile_masks=False)


@dataclass(frozen=True)
class Config:
    name: str
    backend: Backend = "eager"
    precision: Precision = "fp32"
    optimisations: Optimisations = Optimisations()
    gpu_only: bool = False
    cpu_only: bool = False
    needs: str = ""


# The tasks that ship weights (every one today: tests/hdm/test_weights.py).
WITH_WEIGHTS: tuple[Task, ...] = tuple(t for t in typing.get_args(Task) if t in DEFAULT_WEIGHTS)
REFERENCE = Config("fp32 eager (reference)", optimisations=_UNOPTIMISED)
# CUDA graphs (compile's reduce-overhead mode) replay compile's own kernels, so their numerics
# are bf16 compile's; tests/gpu checks that replays return what eager calls return.
CONFIGS = [
    Config("fp32 eager, fused head, channels_last"),
    Config("bf16 eager, fused head, channels_last", precision="bf16"),
    Config("bf16 compile (the GPU default)", backend="compile", precision="bf16",
           gpu_only=True),
    Config("fp16 compile", backend="compile", precision="fp16", gpu_only=True),
    Config("bf16 TensorRT", backend="tensorrt", precision="bf16", gpu_only=True,
           needs="torch_tensorrt"),
    Config("OpenVINO fp32", backend="openvino", cpu_only=True, needs="openvino"),
    Config("OpenVINO auto precision (the CPU default; bf16 where the CPU has it)",
           backend="openvino", precision="auto", cpu_only=True, needs="openvino"),
]


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    if not size:
        return image
    top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def set_psnr(engine: Engine, pairs: list[tuple[Path, Path]], crop: int) -> float:
    """Mean PSNR (RGB, dB) of the engine's output over the pairs."""
    scores = []
    for noisy, clean in pairs:
        image, target = (centre_crop(read_rgb(path), crop) for path in (noisy, clean))
        out = engine.enhance([image])[0]  # a fresh temporal state: unrelated photos
        scores.append(psnr(to_tensor(out)[None], to_tensor(target)[None]).item())
    return float(np.mean(scores))


def build(config: Config, task: Task, device: str) -> Engine:
    settings = EngineSettings(model="auto", task=task, device=device, backend=config.backend,
                              precision=config.precision, colour="host",
                              inference_size="full")  # bench_realtime measures reduced sizes
    return Engine.build(settings, SmoothingParams(enabled=False),
                        stabiliser=StabiliserParams(enabled=False),
                        optimisations=config.optimisations)


def runnable(config: Config, device: torch.device) -> bool:
    if (config.gpu_only and device.type != "cuda") or (config.cpu_only and device.type != "cpu"):
        return False
    return not config.needs or importlib.util.find_spec(config.needs) is not None


def guard(data: Path, device: torch.device, limit: int | None = None,
          configs: list[Config] = CONFIGS, tasks: tuple[Task, ...] = WITH_WEIGHTS,
          crop: int = 0, on_row: Callable[[dict[str, object]], None] | None = None,
          ) -> list[dict[str, object]]:
    """One row per (task, set, configuration) with its PSNR and its delta to the reference
    (``limit``: the first images of each set only); ``on_row`` sees each row as it comes."""
    rows: list[dict[str, object]] = []
    for task in tasks:
        for label, folder in PAIRED_SETS[task]:
            if not (data / folder).is_dir():
                print(f"skipping {label}: {data / folder} not found")
                continue
            pairs = find_pairs(data / folder)[:limit]
            reference = set_psnr(build(REFERENCE, task, str(device)), pairs, crop)
            for config in configs:
                if not runnable(config, device):
                    continue
                score = set_psnr(build(config, task, str(device)), pairs, crop)
                rows.append({"task": task, "set": label, "images": len(pairs), "crop": crop,
                             "config": config.name, "reference_db": reference, "psnr_db": score,
                             "delta_db": score - reference,
                             "ok": abs(score - reference) <= TOLERANCE_DB})
                if on_row is not None:
                    on_row(rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--limit", type=int, help="images per set (default: all)")
    parser.add_argument("--crop", type=int, default=320, help="centre crop size (0: none)")
    parser.add_argument("--json", type=Path, default=Path("out/quality_guard.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    report: dict[str, object] = {"device": card, "tolerance_db": TOLERANCE_DB, "rows": []}

    def write(row: dict[str, object]) -> None:
        report["rows"].append(row)  # type: ignore[attr-defined]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"  {row['task']} {row['set']} {row['config']}: {row['delta_db']:+.3f} dB",
              flush=True)

    rows = guard(args.data, device, args.limit, crop=args.crop, on_row=write)
    print(f"device: {card}; tolerance {TOLERANCE_DB} dB against {REFERENCE.name}")
    print(f"{'task':<9}{'set':<38}{'configuration':<40}{'ref dB':>8}{'dB':>8}{'delta':>8}")
    for row in rows:
        print(f"{row['task']:<9}{row['set']:<38}{row['config']:<40}{row['reference_db']:>8.2f}"
              f"{row['psnr_db']:>8.2f}{row['delta_db']:>+8.3f}{'' if row['ok'] else '  FAIL'}")
    print(f"wrote {args.json}")
    sys.exit(0 if all(row["ok"] for row in rows) else 1)


if __name__ == "__main__":
    main()
