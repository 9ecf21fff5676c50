"""Real time on this machine: speed and quality of each task, model, output size and inference
size in one table, with the x264 transcode of the same frames as the baseline.

    python -m benchmarks.bench_realtime [--tasks dehaze,lowlight,derain] [--models hdm-s,dcp]
        [--sizes 640x360,1280x720,1920x1080] [--inference auto] [--frames 96]
        [--live-seconds 8] [--data ../shared/data] [--json benchmarks/results/realtime.json]

Speed, per row: a file run (decode, enhance, x264 veryfast into MP4, as fast as it goes) and a
live run (a real-time 25 fps lavfi camera published over ZeroMQ on loopback: latency from decode
to publish, and frames dropped) on the engine the CLI would build (shipped weights; ``auto``
backend and precision). The inference size ``auto`` chooses at warm-up is shown as it chose it.

Quality, per row, against full-resolution inference of the same weights (both fp32 eager),
at the row's scale (the reduced short side over the output's short side: a 720p row that runs
the network at 96 pixels scores the paired photos at 96/720 of their size too, so the
photos see what a 720p video sees):

* paired PSNR/SSIM against ground truth on the task's evaluation sets, and PSNR within 3 pixels
  of the ground truth's strong edges (Canny), where a halo would show;
* hue kept on the real low-light photos (DICM, LIME; hdm.photo_stats.fidelity);
* flicker on the fog and night clips (streamer.stats.FlickerMeter: output change where the
  input stood still, 8-bit levels), at the clips' own size with the row's inference size in
  pixels (what temporal steadiness depends on is what the network sees).

``dcp`` (the classical enhancer) is scored the same way. Nothing is trained here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import torch

from benchmarks.bench_pipeline import make_clip, run_file, run_live, transcode_fps
from hdm.data import find_pairs, read_rgb, to_tensor
from hdm.evaluate import PAIRED_SETS, UNPAIRED_SETS
from hdm.metrics import psnr, ssim
from hdm.photo_stats import fidelity
from streamer.engine import Engine, EngineSettings, TemporalState
from streamer.engine.settings import Backend, Colour, ModelName, Task
from streamer.publish.publisher import PAYLOADS
from streamer.runtime.batcher import BatchSettings
from streamer.stats import FlickerMeter

CLIPS = {"dehaze": "dehaze/video_fog/fog_city.mp4",
         "lowlight": "lowlight/video_night/night_bridge.mp4"}  # no rainy clip is shared
CLIP_FRAMES = 48
EDGE_BAND = 3  # pixels either side of a strong edge
PRESET = "veryfast"
# Quality is scored in fp32 eager, full and reduced alike: the photos come in many sizes (an
# export each would take minutes), and what is compared is the reduced inference size itself.
# The exported backends' own difference is bounded by tests/streamer/test_exported.py.
QUALITY_BACKEND = "eager"


def _engine(task: str, model: str, inference: str | int, device: str,
            backend: str = "auto", weights: str = "default", colour: str = "auto") -> Engine:
    return Engine.build(EngineSettings(model=cast(ModelName, model), task=cast(Task, task),
                                       device=device, inference_size=inference,
                                       backend=cast(Backend, backend),
                                       colour=cast(Colour, colour),
                                       weights=weights if model != "dcp" else "default"))


def _enhance_still(engine: Engine, image: np.ndarray) -> torch.Tensor:
    """One photo on its own (a fresh temporal state: nothing to steady against)."""
    out = engine.enhance([image], TemporalState())[0]
    return to_tensor(out).unsqueeze(0)


def _edge_psnr(out: torch.Tensor, target: torch.Tensor, gt_image: np.ndarray) -> float:
    grey = cv2.cvtColor(gt_image, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey, 100, 200)
    band = cv2.dilate(edges, np.ones((2 * EDGE_BAND + 1,) * 2, np.uint8)) > 0
    if not band.any():
        return float("nan")
    mask = torch.from_numpy(band)
    error = ((out[0] - target[0]) ** 2).mean(0)[mask].mean().clamp_min(1e-10)
    return float(-10 * torch.log10(error))


EngineFor = Callable[[np.ndarray], Engine]


def _scaled_engines(task: str, model: str, scale: float | None, device: str, weights: str
                    ) -> EngineFor:
    """An engine per photo size at ``scale`` of it (None: full resolution), built once each."""
    built: dict[int | str, Engine] = {}

    def engine_for(image: np.ndarray) -> Engine:
        short = min(image.shape[:2])
        side: int | str = "full" if scale is None else max(32, round(short * scale))
        if side != "full" and int(side) >= short:
            side = "full"
        if side not in built:
            built[side] = _engine(task, model, side, device, QUALITY_BACKEND, weights)
        return built[side]

    return engine_for


def paired_quality(task: str, engine_for: EngineFor, data: Path, limit: int
                   ) -> dict[str, dict[str, float]]:
    """Mean PSNR (RGB), SSIM and edge-band PSNR per paired set."""
    results: dict[str, dict[str, float]] = {}
    for label, folder in PAIRED_SETS[task]:
        if not (data / folder).is_dir():
            continue
        scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "edge_psnr": []}
        for hazy, clean in find_pairs(data / folder)[:limit]:
            image, gt = read_rgb(hazy), read_rgb(clean)
            out, target = _enhance_still(engine_for(image), image), to_tensor(gt).unsqueeze(0)
            scores["psnr"].append(psnr(out, target).item())
            scores["ssim"].append(ssim(out, target).item())
            scores["edge_psnr"].append(_edge_psnr(out, target, gt))
        results[label] = {k: float(np.nanmean(v)) for k, v in scores.items()}
    return results


def hue_kept(task: str, engine_for: EngineFor, data: Path, limit: int) -> float | None:
    """Mean hue kept (percent of clearly coloured pixels) on the real low-light photos."""
    if task != "lowlight":
        return None
    kept = []
    for _, folder in UNPAIRED_SETS[task]:
        for path in sorted((data / folder).glob("*"))[:limit]:
            if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
                continue
            image = read_rgb(path)
            out = _enhance_still(engine_for(image), image)
            kept.append(fidelity(to_tensor(image).unsqueeze(0), out)["hue_kept"])
    return float(np.mean(kept)) if kept else None


def clip_flicker(task: str, engine_for: EngineFor, data: Path) -> dict[str, float] | None:
    """Flicker of the output and of the input (8-bit levels) over the task's clip."""
    path = data / CLIPS.get(task, "-")
    if not path.is_file():
        return None
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24")
                  for _, f in zip(range(CLIP_FRAMES), container.decode(video=0), strict=False)]
    engine = engine_for(frames[0])
    state, meter = TemporalState(), FlickerMeter()
    for frame in frames:
        meter.update(frame, engine.enhance([frame], state)[0])
    return {"output": meter.output or 0.0, "input": meter.input or 0.0}


def speed(task: str, model: str, inference: str, size: tuple[int, ...], clip: Path,
          args: argparse.Namespace, colour: str = "auto") -> dict[str, Any]:
    """File and live speed of one row. ``colour``: ``auto`` lets a CPU enhance the decoded
    planes themselves where the outputs take them (the file's do, ZeroMQ's do not);
    ``host``: RGB by swscale, the path before 7 December."""
    width, height = size
    engine = _engine(task, model, inference, args.device, colour=colour)
    with tempfile.TemporaryDirectory() as tmp:
        run_file(engine, clip, Path(tmp) / "warm.mp4", BatchSettings(size=args.batch), PRESET)
        file = run_file(engine, clip, Path(tmp) / "out.mp4", BatchSettings(size=args.batch),
                        PRESET)
    side = engine.runner.short_side(height, width)
    live_engine = _engine(task, model, inference, args.device, colour=colour)
    payload = args.live_payload
    run_live(live_engine, width, height, 25, 2.0, payload)  # exports, compiles, timing paid
    live: dict[str, Any] = run_live(live_engine, width, height, 25, args.live_seconds, payload)
    live_side = live_engine.runner.short_side(height, width)
    dropped = sum(live["dropped"].values())
    return {"engine": engine.description, "file_inference": engine.inference_note(height, width),
            "file_short_side": side, "live_inference": live_engine.inference_note(height, width),
            "live_short_side": live_side, "file": file, "live": live,
            "live_payload": payload,
            "live_drop_percent": 100 * dropped / max(live["frames_in"], 1)}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """The table's columns from a row: speed, then the first paired set's scores (reduced and
    full), hue kept and flicker."""
    file, live, q, full = row["file"], row["live"], row["quality"], row["quality_full"]
    first = next(iter(q["paired"]), None)
    scores = q["paired"].get(first, {}) if first else {}
    reference = full["paired"].get(first, {}) if first else {}
    return {
        "task": row["task"], "model": row["model"], "size": row["size"],
        "colour": row.get("colour", "auto"), "inference": row["file_inference"],
        "file fps": file["fps"],
        "x transcode": file["fps"] / row["transcode_fps"],
        "live p50 ms": live["latency_ms"]["p50"], "live p99 ms": live["latency_ms"]["p99"],
        "live drops %": row["live_drop_percent"], "set": first or "-",
        "PSNR": scores.get("psnr"), "PSNR full": reference.get("psnr"),
        "SSIM": scores.get("ssim"), "SSIM full": reference.get("ssim"),
        "edge PSNR": scores.get("edge_psnr"), "edge PSNR full": reference.get("edge_psnr"),
        "hue kept %": q["hue_kept"], "hue kept full %": full["hue_kept"],
        "flicker": (q["flicker"] or {}).get("output"),
        "flicker full": (full["flicker"] or {}).get("output"),
        "flicker input": (full["flicker"] or {}).get("input"),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the flattened rows (the README's)."""
    flat = [_flat(row) for row in rows]
    columns = list(flat[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for values in flat:
        cells = [f"{v:.2f}" if isinstance(v, float) else "-" if v is None else str(v)
                 for v in values.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tasks", default="dehaze,lowlight,derain")
    parser.add_argument("--models", default="hdm-s,dcp")
    parser.add_argument("--sizes", default="640x360,1280x720,1920x1080")
    parser.add_argument("--inference", default="auto", help="comma-separated: auto, full, N")
    parser.add_argument("--colour", default="auto",
                        help="comma-separated: auto (a CPU may enhance the decoded planes), "
                             "host (RGB by swscale)")
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--live-seconds", type=float, default=8.0)
    parser.add_argument("--live-payload", choices=PAYLOADS, default="i420",
                        help="the live rows' ZeroMQ payload (i420: planes, no RGB at all; "
                             "raw: RGB, as before 7 December)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=10, help="photos per set")
    parser.add_argument("--json", type=Path, default=Path("out/bench_realtime.json"))
    parser.add_argument("--no-quality", action="store_true",
                        help="speed only (then --speed-of that JSON scores the quality)")
    parser.add_argument("--speed-of", type=Path, metavar="JSON",
                        help="score the quality of an earlier run's speed rows")
    parser.add_argument("--weights", default="default",
                        help="checkpoint for the HDM rows' quality (default: shipped)")
    args = parser.parse_args()
    for noisy in ("onnxscript", "onnx_ir"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    baselines: dict[str, float] = {}
    report = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{os.cpu_count()} cores, torch {torch.get_num_threads()} threads",
              "torch": torch.__version__, "baselines_transcode_fps": baselines, "rows": rows}
    quality: dict[tuple[str, str, float | None], dict[str, Any]] = {}
    flicker: dict[tuple[str, str, int | None], dict[str, float] | None] = {}

    def scored(task: str, model: str, side: int | None, short: int) -> dict[str, Any]:
        scale = None if side is None else side / short
        key = (task, model, None if scale is None else round(scale, 3))
        if key not in quality:
            engine_for = _scaled_engines(task, model, scale, args.device, args.weights)
            quality[key] = {"paired": paired_quality(task, engine_for, args.data, args.limit),
                            "hue_kept": hue_kept(task, engine_for, args.data, args.limit)}
        # Flicker at the network's own input size on the clip as it is: scaled like the photos,
        # a 360p clip would be seen at 32 pixels for a 1080p row, which no stream is.
        steady = (task, model, side)
        if steady not in flicker:
            engine = _engine(task, model, "full" if side is None else side, args.device,
                             QUALITY_BACKEND, args.weights)
            flicker[steady] = clip_flicker(task, lambda _: engine, args.data)
        return {**quality[key], "flicker": flicker[steady]}

    def save() -> None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))

    if args.speed_of:  # the speed rows of an earlier run (measured on a quiet machine)
        earlier = json.loads(args.speed_of.read_text())
        report.update({k: earlier[k] for k in ("machine", "torch", "baselines_transcode_fps")})
        rows.extend(row for row in earlier["rows"] if row["task"] in args.tasks.split(",")
                    and row["model"] in args.models.split(","))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for width, height in sizes:
                clip = Path(tmp) / f"clip{width}x{height}.mp4"
                make_clip(clip, args.frames, width, height)
                baseline = baselines[f"{width}x{height}"] = transcode_fps(
                    clip, Path(tmp) / "transcode.mp4", PRESET)
                for task, model, inference, colour in itertools.product(
                        args.tasks.split(","), args.models.split(","),
                        args.inference.split(","), args.colour.split(",")):
                    started = time.perf_counter()
                    row: dict[str, Any] = {"task": task, "model": model,
                                           "size": f"{width}x{height}", "inference": inference,
                                           "colour": colour, "transcode_fps": baseline}
                    row.update(speed(task, model, inference, (width, height), clip, args,
                                     colour))
                    row["seconds"] = time.perf_counter() - started
                    rows.append(row)
                    save()
                    print(f"{row['task']} {row['model']} {row['size']} {colour}: "
                          f"{row['file_inference']}, "
                          f"file {row['file']['fps']:.1f} fps, live p99 "
                          f"{row['live']['latency_ms']['p99']} ms, drops "
                          f"{row['live_drop_percent']:.1f}%", flush=True)
    if not args.no_quality:
        for row in rows:
            side, width, height = row["file_short_side"], *map(int, row["size"].split("x"))
            row["quality"] = scored(row["task"], row["model"], side, min(width, height))
            row["quality_full"] = scored(row["task"], row["model"], None, min(width, height))
            save()
    print(f"{report['machine']}; x264 {PRESET} transcode (decode, RGB, encode) fps: "
          + ", ".join(f"{k} {v:.1f}" for k, v in baselines.items()))
    if not args.no_quality:
        print(_table(rows))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
