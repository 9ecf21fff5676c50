"""Forward-pass speed of the HDM presets and of the classical enhancer.

    python benchmarks/bench_model.py [--device cpu|cuda] [--json out/bench_model.json]

Prints a table (ms per frame, fps, peak GPU memory where a GPU is used) and writes JSON. The
DCP masks are part of every HDM forward pass timed here, as in the pipeline.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

import hdm
from hdm.fusion import fuse_head

# (model, size, fused head): the fused head is what the engine runs on a GPU.
CASES = [
    ("hdm", (256, 256), False),
    ("hdm", (256, 256), True),
    ("hdm-s", (256, 256), False),
    ("hdm-s", (256, 256), True),
    ("hdm", (720, 1280), False),
    ("hdm", (720, 1280), True),
    ("hdm-s", (720, 1280), False),
    ("hdm-s", (720, 1280), True),
    ("dcp", (720, 1280), False),
]


def time_call(fn: Callable[[], object], device: torch.device, repeats: int) -> list[float]:
    """Wall-clock seconds of each call after one warm-up, synchronising a GPU around each."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("out/bench_model.json"))
    args = parser.parse_args()
    device = torch.device(args.device)

    rows = []
    for name, (height, width), fused in CASES:
        model = hdm.build_model(name, task="dehaze").eval().to(device)
        if fused:
            fuse_head(model)  # type: ignore[arg-type]
        x = torch.rand(1, 3, height, width, device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            times = time_call(lambda: model(x), device, args.repeats)
        ms = statistics.median(times) * 1000
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        rows.append(
            {"model": name, "fused_head": fused, "height": height, "width": width,
             "ms_per_frame": round(ms, 1),
             "fps": round(1000 / ms, 2), "peak_gpu_mib": peak, "repeats": args.repeats}
        )

    print(f"device: {device_name(device)}, torch {torch.__version__}, batch 1, fp32 eager")
    print(f"{'model':<6} {'head':>6} {'size':>10} {'ms/frame':>10} {'fps':>8}")
    for row in rows:
        size = f"{row['width']}x{row['height']}"
        head = "fused" if row["fused_head"] else "3×5×5"
        print(f"{row['model']:<6} {head:>6} {size:>10} {row['ms_per_frame']:>10.1f} "
              f"{row['fps']:>8.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"device": device_name(device), "torch": torch.__version__, "rows": rows}
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
