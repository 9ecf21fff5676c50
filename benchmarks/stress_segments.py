"""Is a segmented job deterministic? The same job run N times, in each way segments can run
(this process, 2 worker processes, Ray local with 2 workers), compared frame by frame.

Issue 24 saw one segment of a 3x-repeated segmented dcp job differ (38 frames, up to 103 grey
levels). Each run here is its own ``hdm-stream run`` process on one input (by default the
first 400 frames of ../shared/data/dehaze/video_fog/fog_city.mp4 with a sine tone as AAC, a
keyframe every 12 frames). Every decoded frame is hashed (its pixels, not its buffer's
padding); each run is compared with the first run of its variant and with the very first run
of all: which frames differ, in which segments, by how many grey levels, and whether the
encoded video packets match too (the file's bytes do not: Matroska writes a random segment
UID and the date). All runs share one cache folder, as one user's repeated commands do
(``--fresh-cache``: a new one per run, so ``auto`` sizes are measured anew each time).

    python -m benchmarks.stress_segments --runs 20
    python -m benchmarks.stress_segments --runs 5 --variants 2 --json out.json
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.bench_segments import encode_lavfi

CLIP = Path(__file__).resolve().parents[1] / "../shared/data/dehaze/video_fog/fog_city.mp4"
VARIANTS = {"1": [], "2": ["--workers", "2"], "ray": ["--workers", "2", "--ray", "local"]}
NAMES = {"1": "this process", "2": "2 worker processes", "ray": "Ray local, 2 workers"}


def make_input(path: Path, frames: int, gop: int) -> None:
    """The fog clip's first ``frames`` frames at its own size (x264, CRF 18, a keyframe every
    ``gop`` frames) with a 440 Hz tone as AAC."""
    if not CLIP.is_file():
        raise SystemExit(f"needs {CLIP} (../shared/data), or give --input")
    seconds = frames / 24
    graph = (f"movie={CLIP.resolve()},trim=end_frame={frames}[out0];"
             f"sine=frequency=440:duration={seconds}[out1]")
    encode_lavfi(graph, path, {"crf": "18", "g": str(gop)})


def decoded(path: Path) -> list[np.ndarray]:
    """The output's frames as arrays (their pixels only: a plane's padding is not compared)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray() for f in container.decode(video=0)]


def packets_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            digest.update(bytes(packet))
    return digest.hexdigest()


def frame_hashes(frames: list[np.ndarray]) -> list[str]:
    return [hashlib.sha256(f.tobytes()).hexdigest()[:16] for f in frames]


@dataclass
class Run:
    variant: str
    index: int
    rc: int
    seconds: float
    packets_sha256: str = ""
    frame_hashes: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # the log lines worth keeping
    error: str = ""


def run_once(tool: list[str], source: Path, out: Path, flags: list[str], home: Path,
             variant: str, index: int) -> tuple[Run, list[np.ndarray]]:
    started = time.monotonic()
    done = subprocess.run([*tool, str(source), "-o", str(out), *flags], capture_output=True,
                          text=True, env={**os.environ, "HOME": str(home)})
    run = Run(variant, index, done.returncode, round(time.monotonic() - started, 2))
    run.said = [line for line in done.stderr.splitlines()
                if "auto inference" in line or "error:" in line or "segments of" in line]
    if done.returncode != 0:
        run.error = (done.stderr.strip().splitlines() or ["(nothing said)"])[-1]
        return run, []
    run.packets_sha256 = packets_sha256(out)
    frames = decoded(out)
    run.frame_hashes = frame_hashes(frames)
    out.unlink()
    return run, frames


def compare(reference: list[np.ndarray], frames: list[np.ndarray],
            segment_of: list[int]) -> dict[str, object]:
    """Where ``frames`` differ from ``reference``: the frames, their segments, and by how much
    (the largest and the mean absolute difference over the differing frames, in levels)."""
    if len(frames) != len(reference):
        return {"frames": len(frames), "expected": len(reference)}
    differing = [i for i, (x, y) in enumerate(zip(reference, frames, strict=True))
                 if not np.array_equal(x, y)]
    if not differing:
        return {"differing_frames": 0}
    gaps = [np.abs(reference[i].astype(np.int16) - frames[i].astype(np.int16))
            for i in differing]
    return {"differing_frames": len(differing), "first": differing[0], "last": differing[-1],
            "segments": sorted({segment_of[i] for i in differing}),
            "max_levels": int(max(int(g.max()) for g in gaps)),
            "mean_levels": round(float(np.mean([g.mean() for g in gaps])), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each variant")
    parser.add_argument("--variants", default="1,2,ray",
                        help="comma-separated: 1 (this process), 2 (2 worker processes), "
                             "ray (Ray local, 2 workers)")
    parser.add_argument("--input", type=Path, help="instead of the fog clip")
    parser.add_argument("--frames", type=int, default=400, help="of the fog clip")
    parser.add_argument("--gop", type=int, default=12, help="keyframe interval of the clip")
    parser.add_argument("--segment-seconds", type=float, default=1.5)
    parser.add_argument("--model", default="dcp")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="a new cache folder (HOME) for every run")
    parser.add_argument("--json", type=Path,
                        default=Path("benchmarks/results/stress_segments.json"))
    args = parser.parse_args()
    variants = args.variants.split(",")
    if unknown := [v for v in variants if v not in VARIANTS]:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    from streamer.jobs.segments import plan_segments

    tool = [sys.executable, "-m", "streamer.cli", "run"]
    common = ["--model", args.model, "--task", "dehaze", "--quiet", "-y", "--segment-seconds",
              f"{args.segment_seconds:g}"]
    runs: list[Run] = []
    comparisons: list[dict[str, Any]] = []  # JSON records
    load = [os.getloadavg()[0]]  # a shared machine: what else ran shows here
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = args.input or folder / "in.mp4"
        if args.input is None:
            make_input(source, args.frames, args.gop)
        plan = plan_segments(str(source), args.segment_seconds)
        segment_of = [s.index for s in plan.segments for _ in range(s.frames)]
        print(f"{source.name}: {plan.frames} frames, {len(plan.segments)} segments; "
              f"{args.runs} runs each of {', '.join(NAMES[v] for v in variants)}", flush=True)
        first: list[np.ndarray] | None = None
        for variant in variants:
            reference: list[np.ndarray] | None = None
            for index in range(args.runs):
                home = folder / (f"home-{variant}-{index}" if args.fresh_cache else "home")
                home.mkdir(exist_ok=True)
                run, frames = run_once(tool, source, folder / "out.mkv",
                                       [*common, *VARIANTS[variant]], home, variant, index)
                runs.append(run)
                entry: dict[str, object] = {"variant": variant, "run": index, "rc": run.rc}
                if frames:
                    reference = reference if reference is not None else frames
                    first = first if first is not None else frames
                    entry["vs_variant_run_0"] = compare(reference, frames, segment_of)
                    entry["vs_first_run"] = compare(first, frames, segment_of)
                comparisons.append(entry)
                print(f"  {NAMES[variant]} run {index}: rc {run.rc}, {run.seconds:.1f} s, "
                      f"{entry.get('vs_variant_run_0', run.error)}", flush=True)
    load.append(os.getloadavg()[0])
    table = summary(runs, comparisons, variants)
    print("\n| variant | runs ok | distinct decoded outputs | runs differing from its run 0 "
          "| worst difference | same video packets | matches the first variant |\n"
          "|---|---|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(str(row[k]) for k in (
            "variant", "runs_ok", "distinct_decoded", "differing_runs", "worst",
            "same_video_packets", "matches_first_variant")) + " |")
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"{platform.processor() or platform.platform()}",
              "date": datetime.date.today().isoformat(), "model": args.model,
              "input": str(args.input) if args.input else
              f"fog_city first {args.frames} frames, 24 fps, keyframe every {args.gop}, AAC",
              "frames": plan.frames, "segments": [s.frames for s in plan.segments],
              "segment_seconds": args.segment_seconds, "runs_per_variant": args.runs,
              "fresh_cache": args.fresh_cache, "load_average_1min_start_end": load,
              "summary": table, "comparisons": comparisons,
              "runs": [vars(r) for r in runs]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")


def summary(runs: list[Run], comparisons: list[dict[str, Any]], variants: list[str]
            ) -> list[dict[str, object]]:
    """One row per variant: how many distinct decoded outputs its runs gave, and the worst
    difference from its first run."""
    rows = []
    first = next((r.frame_hashes for r in runs if r.rc == 0), None)
    for variant in variants:
        ok = [r for r in runs if r.variant == variant and r.rc == 0]
        mine = [c for c in comparisons if c["variant"] == variant and "vs_variant_run_0" in c]
        diffs = [c["vs_variant_run_0"] for c in mine
                 if c["vs_variant_run_0"] != {"differing_frames": 0}]
        worst = max(diffs, key=lambda d: (d.get("max_levels", 256), d.get("differing_frames", 0)),
                    default=None)
        rows.append({"variant": NAMES[variant],
                     "runs_ok": f"{len(ok)}/{sum(r.variant == variant for r in runs)}",
                     "distinct_decoded": len({tuple(r.frame_hashes) for r in ok}),
                     "differing_runs": len(diffs),
                     "worst": "none" if worst is None else json.dumps(worst),
                     "same_video_packets": len({r.packets_sha256 for r in ok}) == 1,
                     "matches_first_variant": bool(ok) and all(r.frame_hashes == first
                                                               for r in ok)})
    return rows


if __name__ == "__main__":
    main()
