"""Model-only speed matrix on one device, against the release's way of running HDM.

    python -m benchmarks.bench_matrix [--plan lease|full|cpu] [--device cuda]
                                      [--budget-s 420] [--json out/bench_matrix.json]

Each row runs what the engine runs for a batch already on the device: the DCP masks (with
temporal smoothing) and the network, through one backend (eager, torch.compile default or
max-autotune, CUDA graphs via compile's reduce-overhead mode, TensorRT when importable) at one
precision. Reported: ms per frame (median batch time / batch), fps, achieved TFLOP/s (the
FLOPs of the network the engine runs, fused head included, counted with torch's FlopCounterMode
on one frame; the DCP masks do no matrix work and are not counted), peak GPU memory and compile
time. The baseline in the same run is the release's way: masks with NumPy/OpenCV on the
CPU at 1/4 scale (benchmarks/release_masks.py), the network in fp32 eager, unfused, NCHW, one
frame at a time. Every row's ``vs_release`` is its fps over that baseline's at the same preset and
size. Ablations switch one optimisation off at a time from the fastest configuration.

Rows run in order until ``--budget-s`` is spent; the rest are recorded as skipped. The JSON is
rewritten after every row, so a run cut short still leaves its results.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import hdm
from benchmarks.release_masks import release_masks
from hdm.model import pad_input
from streamer.engine import Engine, EngineSettings, Optimisations, TemporalState
from streamer.engine.settings import Backend, CompileMode, ModelName, Precision

SIZES = {"360p": (360, 640), "720p": (720, 1280), "1080p": (1080, 1920), "2160p": (2160, 3840)}
# Backend labels -> (engine backend, torch.compile mode).
BACKENDS: dict[str, tuple[Backend, CompileMode]] = {
    "eager": ("eager", "default"),
    "compile": ("compile", "default"),
    "max-autotune": ("compile", "max-autotune-no-cudagraphs"),
    "cudagraphs": ("compile", "reduce-overhead"),
    "tensorrt": ("tensorrt", "default"),
}
NETWORKS: tuple[ModelName, ...] = ("hdm", "hdm-s")
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16")
ABLATIONS = {
    "unfused head": Optimisations(fuse_head=False),
    "NCHW": Optimisations(channels_last=False),
    "eager masks": Optimisations(compile_masks=False),
}


@dataclass(frozen=True)
class Case:
    model: ModelName
    size: str
    batch: int
    precision: Precision
    backend: str
    ablation: str = ""


def plan_cases(plan: str) -> Iterator[Case]:
    """The rows of a plan, most important first (a lease run may be cut short by its budget)."""
    if plan == "cpu":
        rows: tuple[tuple[ModelName, int], ...] = (("hdm-s", 1), ("hdm-s", 4), ("hdm", 1))
        for model, batch in rows:
            yield Case(model, "360p", batch, "fp32", "eager")
        for name in ("unfused head", "NCHW"):
            yield Case("hdm", "360p", 1, "fp32", "eager", name)
        yield Case("hdm-s", "360p", 4, "bf16", "eager")
        yield Case("dcp", "720p", 1, "fp32", "eager")
        return
    if plan == "lease":
        # The targets first (hdm 1080p bf16, hdm-s 2160p), then cheap eager rows, then the
        # optimisations' ablations and the other compiled rows; a short lease stops early.
        yield Case("hdm", "1080p", 4, "bf16", "compile")
        yield Case("hdm-s", "2160p", 4, "bf16", "compile")
        targets: tuple[tuple[ModelName, str], ...] = (("hdm", "1080p"), ("hdm-s", "2160p"))
        for model, size in targets:
            for precision in PRECISIONS[:2]:  # fp32, bf16
                yield Case(model, size, 4, precision, "eager")
        for name in ABLATIONS:
            yield Case("hdm", "1080p", 4, "bf16", "compile", name)
        yield Case("hdm", "1080p", 1, "bf16", "cudagraphs")
        yield Case("hdm", "1080p", 1, "bf16", "compile")
        yield Case("hdm", "1080p", 8, "bf16", "compile")
        yield Case("hdm", "1080p", 4, "fp16", "compile")
        yield Case("hdm", "1080p", 4, "bf16", "tensorrt")
        for model in NETWORKS:
            for size in ("720p", "1080p", "2160p"):
                for precision in PRECISIONS:
                    for batch in (1, 4, 8):
                        if (model, size) in targets and batch == 4 and precision != "fp16":
                            continue
                        yield Case(model, size, batch, precision, "eager")
        yield Case("hdm", "720p", 4, "bf16", "compile")
        yield Case("hdm", "2160p", 4, "bf16", "compile")
        yield Case("hdm", "1080p", 4, "bf16", "max-autotune")
        return
    for model in NETWORKS:
        for size in ("720p", "1080p", "2160p"):
            for batch in (1, 4, 8):
                for precision in PRECISIONS:
                    for backend in BACKENDS:
                        yield Case(model, size, batch, precision, backend)
    for name in ABLATIONS:
        yield Case("hdm", "1080p", 4, "bf16", "compile", name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of one eager forward pass of ``model`` on one frame."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x[:1])
    return counter.get_total_flops()


def time_batches(fn: Callable[[], object], device: torch.device, seconds: float) -> list[float]:
    """Seconds per call: three warm-up calls, then calls until ``seconds`` pass (at least 5)."""
    for _ in range(3):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or time.perf_counter() < deadline:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def run_case(case: Case, device: torch.device, seconds: float) -> dict[str, object]:
    backend, mode = BACKENDS[case.backend]
    settings = EngineSettings(task="dehaze", model=case.model, weights="random",
                              device=str(device), backend=backend, compile_mode=mode,
                              precision=case.precision)
    optimisations = ABLATIONS.get(case.ablation, Optimisations())
    height, width = SIZES[case.size]
    started = time.perf_counter()
    engine = Engine.build(settings, optimisations=optimisations)
    x = torch.rand(case.batch, 3, height, width, device=device)
    if engine.runner.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    video = [TemporalState()] * case.batch  # consecutive frames of one stream, as in a file
    engine.runner(x, video)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    compile_s = time.perf_counter() - started
    times = time_batches(lambda: engine.runner(x, video), device, seconds)
    ms = statistics.median(times) * 1000 / case.batch
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    flops = count_flops(engine.model, x)
    return {"ms_per_frame": ms, "fps": 1000 / ms, "compile_s": compile_s,
            "tflop_per_frame": flops / 1e12, "tflops": flops * 1000 / ms / 1e12,
            "peak_gpu_mib": peak, "p90_ms_per_frame": float(np.percentile(times, 90)) * 1000
            / case.batch, "engine": engine.description}


def run_release(model: str, size: str, device: torch.device, seconds: float) -> dict[str, object]:
    """The release's way: CPU OpenCV masks, then fp32 eager NCHW, unfused, batch 1."""
    height, width = SIZES[size]
    net = hdm.build_model(model, task="dehaze", weights="random").eval().to(device)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    # The release's masks, made for the picture as our network pads it (its reflected margin).
    padded = pad_input(torch.from_numpy(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    padded_image = np.ascontiguousarray(padded.numpy())

    def frame() -> None:
        masks = torch.from_numpy(release_masks(padded_image))[None].to(device)
        x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            net(x, masks)

    times = time_batches(frame, device, seconds)
    ms = statistics.median(times) * 1000
    return {"ms_per_frame": ms, "fps": 1000 / ms}


def measure(case: Case, device: torch.device, seconds: float, trt: bool,
            baseline: Callable[[str, str], float | None]) -> dict[str, object]:
    """One row's results, or its status when it cannot run here or fails."""
    if case.backend == "tensorrt" and not trt:
        return {"status": "skipped: torch_tensorrt is not installed"}
    if case.precision == "fp16" and device.type != "cuda":
        return {"status": "skipped: fp16 needs a GPU"}
    try:
        row = run_case(case, device, seconds)
        release_fps = baseline(case.model, case.size) if case.model != "dcp" else None
        fps: float = row["fps"]  # type: ignore[assignment]
        return {**row, "vs_release": fps / release_fps if release_fps else None, "status": "ok"}
    except Exception as error:  # noqa: BLE001 - recorded, the run goes on
        return {"status": _error_line(error)}
    finally:
        torch.compiler.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _error_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=("lease", "full", "cpu"), default=None,
                        help="rows to run (default: lease on a GPU, cpu otherwise)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per row")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--json", type=Path, default=Path("out/bench_matrix.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    plan = args.plan or ("lease" if device.type == "cuda" else "cpu")
    trt = importlib.util.find_spec("torch_tensorrt") is not None
    report: dict[str, object] = {"device": device_name(device), "torch": torch.__version__,
                                 "plan": plan, "release": [], "rows": []}
    rows: list[dict[str, object]] = report["rows"]  # type: ignore[assignment]
    releases: list[dict[str, object]] = report["release"]  # type: ignore[assignment]
    started = time.perf_counter()

    def baseline(model: str, size: str) -> float | None:
        for row in releases:
            if row["model"] == model and row["size"] == size:
                return row.get("fps")  # type: ignore[return-value]
        row = {"model": model, "size": size}
        try:
            row.update(run_release(model, size, device, args.seconds))
        except Exception as error:  # noqa: BLE001 - recorded, the run goes on
            row["status"] = _error_line(error)
        releases.append(row)
        return row.get("fps")  # type: ignore[return-value]

    try:
        for case in plan_cases(plan):
            row: dict[str, object] = asdict(case)
            if time.perf_counter() - started > args.budget_s:
                row["status"] = "skipped: time budget spent"
            else:
                row.update(measure(case, device, args.seconds, trt, baseline))
            rows.append(row)
            print_row(row)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2))
    except KeyboardInterrupt:  # a time limit's SIGINT: keep and print what was measured
        print("interrupted", flush=True)
    print_table(report)
    print(f"wrote {args.json}")


def print_row(row: dict[str, object]) -> None:
    if row.get("status") == "ok":
        print(f"  {_label(row)}: {row['ms_per_frame']:.2f} ms/frame", flush=True)
    else:
        print(f"  {_label(row)}: {row.get('status')}", flush=True)


def _label(row: dict[str, object]) -> str:
    ablation = f" -{row['ablation']}" if row.get("ablation") else ""
    return (f"{row['model']} {row['size']} b{row['batch']} {row['precision']} "
            f"{row['backend']}{ablation}")


def print_table(report: dict[str, object]) -> None:
    print(f"\ndevice: {report['device']}, torch {report['torch']}, plan {report['plan']}")
    print("release's way (CPU OpenCV masks + fp32 eager network, batch 1):")
    for row in report["release"]:  # type: ignore[attr-defined]
        fps = f"{row['fps']:.2f} fps ({row['ms_per_frame']:.1f} ms)" if "fps" in row else row[
            "status"]
        print(f"  {row['model']:<6} {row['size']:>6}  {fps}")
    header = (f"{'model':<6}{'size':>7}{'batch':>6}{'prec':>6} {'backend':<24}{'ms/frame':>9}"
              f"{'fps':>8}{'TFLOP/s':>9}{'peak MiB':>9}{'compile s':>10}{'vs release':>11}")
    print(header)
    for row in report["rows"]:  # type: ignore[attr-defined]
        backend = str(row["backend"]) + (f" -{row['ablation']}" if row.get("ablation") else "")
        start = f"{row['model']:<6}{row['size']:>7}{row['batch']:>6}{row['precision']:>6} "
        if row.get("status") != "ok":
            print(f"{start}{backend:<24}  {row.get('status')}")
            continue
        peak = f"{row['peak_gpu_mib']:.0f}" if row["peak_gpu_mib"] is not None else "-"
        ratio = f"{row['vs_release']:.1f}x" if row.get("vs_release") else "-"
        print(f"{start}{backend:<24}{row['ms_per_frame']:>9.2f}{row['fps']:>8.1f}"
              f"{row['tflops']:>9.2f}{peak:>9}{row['compile_s']:>10.1f}{ratio:>11}")


if __name__ == "__main__":
    main()
