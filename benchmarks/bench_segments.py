"""Segmented jobs: wall time of a plain run against 2 local workers and Ray local with 2
workers on one 1080p file, and the seams: is the output's frame-to-frame change at segment
joins any larger than elsewhere?

The file is a real clip (../shared/data/dehaze/video_fog/fog_city.mp4) scaled to 1080p, with
a sine tone as audio. Each configuration runs as its own ``hdm-stream run`` process, one after
another (wall time from the command's start, Ray's start-up included). The seam check decodes
the plain and the segmented outputs: for every pair of consecutive frames, the mean absolute
change of grey (0-255) in the output minus the input's change; joins against the rest.

    python -m benchmarks.bench_segments --model dcp --seconds 16 --segment-seconds 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

CLIP = Path(__file__).resolve().parents[1] / "../shared/data/dehaze/video_fog/fog_city.mp4"


def make_input(path: Path, seconds: float) -> None:
    """The clip, looped and scaled to 1920x1080 (x264 veryfast, CRF 18, keyframes every 2 s),
    with a 440 Hz tone as AAC."""
    frames = round(seconds * 24)
    graph = (f"movie={CLIP.resolve()}:loop=0,scale=1920:1080,trim=end_frame={frames}[out0];"
             f"sine=frequency=440:duration={seconds}[out1]")
    encode_lavfi(graph, path, {"crf": "18", "preset": "veryfast", "g": "48"})


def encode_lavfi(graph: str, path: Path, options: dict[str, str]) -> None:
    """A lavfi graph's video (out0, x264 with ``options``, 24 fps, yuv420p at its own size)
    and audio (out1, mono AAC) into ``path``, the frames numbered from 0."""
    with av.open(graph, format="lavfi") as src, av.open(str(path), "w") as dst:
        video = dst.add_stream("libx264", rate=24, options=options)
        audio = dst.add_stream("aac", rate=44100, layout="mono")
        count = 0
        for frame in src.decode():
            if isinstance(frame, av.VideoFrame):
                if count == 0:
                    video.width, video.height = frame.width, frame.height
                    video.pix_fmt = "yuv420p"
                picture = frame.reformat(format="yuv420p")
                picture.pts, picture.time_base = count, Fraction(1, 24)
                count += 1
                dst.mux(video.encode(picture))
            elif isinstance(frame, av.AudioFrame):
                frame.pts = None
                dst.mux(audio.encode(frame))
        dst.mux(video.encode())
        dst.mux(audio.encode())


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - started


def grey(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray", width=480, height=270).astype(np.float32)
                for f in container.decode(video=0)]


def keyframe_indices(path: Path) -> list[int]:
    """Display positions of the keyframes after the first."""
    with av.open(str(path)) as container:
        flags = [k for _, k in sorted((p.pts, p.is_keyframe) for p in container.demux(video=0)
                                      if p.size)]
    return [i for i, key in enumerate(flags) if key and i > 0]


def seam_report(source: Path, plain: Path, segmented: Path, joins: list[int]
                ) -> dict[str, object]:
    """Frame-to-frame change beyond the input's: at the joins of the segmented output, at the
    plain output's own keyframes (an encoder's I frame shows as such a step too), and at every
    other pair; and how far the segmented output is from the plain one (PSNR)."""
    x, a, b = grey(source), grey(plain), grey(segmented)

    def excess(out: list[np.ndarray]) -> np.ndarray:
        return np.array([np.abs(out[i + 1] - out[i]).mean() - np.abs(x[i + 1] - x[i]).mean()
                         for i in range(len(out) - 1)])

    plain_excess, segmented_excess = excess(a), excess(b)
    at = [j - 1 for j in joins]  # the pair (last of a segment, first of the next)
    others = np.delete(segmented_excess, at)
    psnr = np.array([10 * np.log10(255**2 / max(float(((a[i] - b[i]) ** 2).mean()), 1e-10))
                     for i in range(len(b))])
    near = sorted({j + k for j in joins for k in (0, 1, 2) if j + k < len(b)})
    keys = keyframe_indices(plain)
    return {"joins": joins,
            "excess_change_at_joins": [round(float(segmented_excess[i]), 3) for i in at],
            "plain_keyframes": keys,
            "plain_excess_change_at_its_keyframes": [round(float(plain_excess[k - 1]), 3)
                                                     for k in keys],
            "excess_change_elsewhere": {
                "mean": round(float(others.mean()), 3),
                **{f"p{q}": round(float(np.percentile(others, q)), 3) for q in (95, 99)},
                "max": round(float(others.max()), 3)},
            "psnr_vs_plain_db": {"first_3_frames_of_segments": round(float(psnr[near].mean()), 2),
                                 "elsewhere": round(float(np.delete(psnr, near).mean()), 2)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dcp")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--segment-seconds", type=float, default=4.0)
    parser.add_argument("--json", type=Path,
                        default=Path("benchmarks/results/bench_segments.json"))
    args = parser.parse_args()
    if not CLIP.is_file():
        raise SystemExit(f"bench_segments: needs {CLIP.resolve()} (../shared/data)")
    tool = [sys.executable, "-m", "streamer.cli", "run"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "in.mp4"
        make_input(source, args.seconds)
        common = ["--model", args.model, "--task", "dehaze", "--quiet", "-y"]
        seg = ["--segment-seconds", f"{args.segment_seconds:g}"]
        runs = {"plain": [], "segments, this process": seg, "2 workers": [*seg, "--workers", "2"],
                "Ray local, 2 workers": [*seg, "--workers", "2", "--ray", "local"]}
        results: dict[str, dict[str, Any]] = {}  # run -> its seconds and output file
        for name, flags in runs.items():
            out = folder / f"{name.split(',')[0].replace(' ', '_')}.mp4"
            results[name] = {"seconds": round(timed([*tool, str(source), "-o", str(out),
                                                     *common, *flags]), 2), "output": out}
            print(f"{name}: {results[name]['seconds']:.1f} s", flush=True)
        from streamer.jobs.segments import plan_segments

        plan = plan_segments(str(source), args.segment_seconds)
        joins, total = [], 0
        for segment in plan.segments[:-1]:
            total += segment.frames
            joins.append(total)
        seams = seam_report(source, results["plain"]["output"],
                            results["2 workers"]["output"], joins)
    base = results["plain"]["seconds"]
    print("\n| run | wall s | vs plain |\n|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']:.1f} | {base / r['seconds']:.2f}x |")
    print(json.dumps(seams, indent=1))
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor()}",
              "model": args.model, "input": f"fog_city looped, 1920x1080, {args.seconds:g} s, "
              "24 fps, AAC", "segment_seconds": args.segment_seconds,
              "frames": plan.frames, "segments": len(plan.segments),
              "wall_s": {k: r["seconds"] for k, r in results.items()},
              "speedup_vs_plain": {k: round(base / r["seconds"], 3) for k, r in results.items()},
              "seams": seams}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
