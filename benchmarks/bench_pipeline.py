"""End-to-end pipeline speed: per-stage throughput and latency percentiles, file and live.

    python -m benchmarks.bench_pipeline [--device cpu|cuda] [--size 1920x1080] [--frames 120]
                                        [--models dcp,hdm-s] [--ablations]
                                        [--json out/bench_pipeline.json]

Baselines in the same run, on the same frames: x264's own rate (the frames decoded into memory
first, then only encoded, through the same FileSink settings: the ceiling of any file pipeline),
and a plain PyAV transcode (decode, RGB, x264). Every file figure comes with its ratio to the
encode-only rate. HDM presets run with random weights: a network's cost does not depend on its
weights. The live case reads a real-time lavfi source and publishes over ZeroMQ on loopback;
latency runs from decode to publish. ``--ablations`` reruns the first HDM file case with the
colour conversion on the other side (host on a GPU, device on the CPU) and with no batch in
flight, to measure those optimisations on their own.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from streamer.engine import Engine, EngineSettings
from streamer.engine.settings import Colour
from streamer.frames import ANY
from streamer.publish.publisher import Payload, PublishSettings
from streamer.runtime.batcher import BatchSettings
from streamer.runtime.pipeline import Pipeline
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileSink
from streamer.sources.video import VideoSource


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.kron(np.roll(base, i, axis=1), np.ones((8, 8, 1), np.uint8))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode())


def transcode_fps(src: Path, dst: Path, preset: str) -> float:
    """Decode and re-encode with x264 only: the floor any enhancement pipeline adds to."""
    started = time.perf_counter()
    count = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video_in = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=video_in.average_rate, options={"preset": preset})
        stream.width, stream.height, stream.pix_fmt = video_in.width, video_in.height, "yuv420p"
        for frame in inp.decode(video_in):
            rgb = frame.to_ndarray(format="rgb24")  # the pipeline converts to RGB and back too
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")
                                  .reformat(format="yuv420p")))
            count += 1
        out.mux(stream.encode())
    return count / (time.perf_counter() - started)


def encode_only_fps(src: Path, dst: Path, preset: str) -> float:
    """x264's own rate through our FileSink: frames decoded into memory first (I420 planes,
    nothing to convert), then timed while only encoded and muxed."""
    source = VideoSource(str(src))
    info = source.open()
    frames = list(source.frames(ANY))
    sink = FileSink(dst, EncodeSettings(preset=preset))
    sink.open(replace(info, passthrough=()))
    started = time.perf_counter()
    for frame in frames:
        sink.write_frame(frame)
    sink.close()
    return len(frames) / (time.perf_counter() - started)


def run_file(engine: Engine, src: Path, dst: Path, batching: BatchSettings,
             preset: str) -> dict[str, object]:
    pipeline = Pipeline(VideoSource(str(src)), engine,
                        output=(dst, EncodeSettings(preset=preset)),
                        batching=batching, progress=False)
    return pipeline.run().as_dict()


def run_live(engine: Engine, width: int, height: int, fps: int,
             seconds: float, payload: Payload = "raw") -> dict[str, object]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    # A camera: drops rather than queueing up latency, and reconnects when it ends, so it is
    # stopped after ``seconds`` rather than given a duration (a finite live source would be
    # reopened for ever).
    source = VideoSource(f"lavfi:testsrc2=size={width}x{height}:rate={fps},realtime", live=True)
    pipeline = Pipeline(source, engine, publish=PublishSettings(endpoint, payload=payload),
                        batching=BatchSettings(size=1, max_delay_ms=0, latency_ms=200,
                                              overlap=False),  # as for a camera
                        progress=False)
    timer = threading.Timer(seconds, pipeline.stop)
    timer.start()
    try:
        return pipeline.run().as_dict()
    finally:
        timer.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--preset", default="veryfast", help="x264 preset")
    parser.add_argument("--models", default="dcp,hdm-s")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--live-fps", type=int, default=25)
    parser.add_argument("--live-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path, default=Path("out/bench_pipeline.json"))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    device = torch.device(args.device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"

    rows: list[dict[str, Any]] = []  # JSON records
    report: dict[str, object] = {"card": card, "size": [width, height], "rows": rows}

    def record(row: dict[str, Any]) -> None:
        """Keep the row and rewrite the JSON, so a run cut short keeps what it measured."""
        rows.append(row)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "clip.mp4", Path(tmp) / "out.mp4"
        make_clip(src, args.frames, width, height)
        report["encode_only_fps"] = encode_only = encode_only_fps(src, dst, args.preset)
        report["transcode_fps"] = transcode = transcode_fps(src, dst, args.preset)
        batching = BatchSettings(size=args.batch)
        models = args.models.split(",")
        first_hdm = next((name for name in models if name.startswith("hdm")), None)
        for name in models:
            weights = "random" if name.startswith("hdm") else "default"
            # One engine per model, reused by its variants: each compile is paid once per shape.
            engine = Engine.build(EngineSettings(task="dehaze", model=name, weights=weights,
                                                 device=args.device, precision=args.precision))
            row = {"model": name, "engine": engine.description,
                   "file": run_file(engine, src, dst, batching, args.preset),
                   "live": run_live(engine, width, height, args.live_fps, args.live_seconds)}
            record(row)
            if not args.ablations or name != first_hdm:
                continue
            side: Colour = "host" if engine.colour_on_device else "device"
            other = Engine(engine.runner, engine.transfer,  # the same compiled runner
                           replace(engine.settings, colour=side))
            record({"model": f"{name} colour={side}", "engine": engine.description,
                    "file": run_file(other, src, dst, batching, args.preset)})
            record({"model": f"{name} overlap=False", "engine": engine.description,
                    "file": run_file(engine, src, dst, replace(batching, overlap=False),
                                     args.preset)})

    print(f"card: {card}, torch {torch.__version__}, {width}x{height}, {args.frames} frames, "
          f"batch {args.batch}, x264 {args.preset}, live {args.live_fps} fps")
    print(f"x264 encode only: {encode_only:.1f} fps; decode + RGB + x264 transcode: "
          f"{transcode:.1f} fps")
    print(f"{'model':<26}{'file fps':>9}{'vs x264':>9}{'decode':>8}{'infer':>8}{'encode':>8}"
          f"{'live p50':>10}{'p95':>8}{'p99':>8}{'drops':>7}")
    for row in rows:
        f = row["file"]
        stage = f["stage_fps"]
        line = (f"{row['model']:<26}{f['fps']:>9.1f}{f['fps'] / encode_only:>8.2f}x"
                f"{stage['decode']:>8.0f}{stage['infer']:>8.1f}{stage['file']:>8.0f}")
        if "live" in row:
            live = row["live"]
            lat = live["latency_ms"]
            drops = sum(live["dropped"].values())
            line += (f"{lat['p50'] or 0:>10.1f}{lat['p95'] or 0:>8.1f}{lat['p99'] or 0:>8.1f}"
                     f"{drops:>7}")
        print(line)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
