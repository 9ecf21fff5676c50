"""N live streams through one engine (``serve``) against N separate ``run`` processes.

Each stream is a real-time lavfi source marked live (it drops rather than queueing latency up,
as a camera does), enhanced and published over ZeroMQ. Reported per configuration: total output
fps, the worst stream's p99 latency (decoded to published), frames dropped, and the resident
memory of all processes together, sampled mid-run. Both sides run as child processes, so that
each memory figure is theirs alone.

    python -m benchmarks.bench_streams --models dcp,hdm-s --counts 1,2,4 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _source(size: str, fps: int, index: int) -> str:
    pattern = ("testsrc2", "smptebars", "testsrc", "rgbtestsrc")[index % 4]
    return f"lavfi:{pattern}=size={size}:rate={fps},realtime"  # live: runs until stopped


def _rss_mib(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return round(total, 1)


def _run_children(commands: list[list[str]], seconds: float) -> tuple[list[str], float]:
    """Start the commands, sample their memory half-way into the streaming, wait; stdouts."""
    children = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for c in commands]
    time.sleep(8 + seconds / 2)  # start-up (torch import, engine) then half the stream
    memory = _rss_mib([c.pid for c in children])
    outputs = [c.communicate(timeout=seconds + 120)[0] for c in children]
    return outputs, memory


def one_service(model: str, count: int, size: str, fps: int, seconds: float) -> dict[str, object]:
    command = [sys.executable, "-m", "benchmarks.bench_streams", "--child", model, str(count),
               size, str(fps), str(seconds)]
    outputs, memory = _run_children([command], seconds)
    result: dict[str, object] = json.loads(outputs[0])
    result["rss_mib"] = memory
    return result


def many_processes(model: str, count: int, size: str, fps: int, seconds: float
                   ) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        summaries = [Path(tmp) / f"{i}.json" for i in range(count)]
        commands = [[sys.executable, "-m", "streamer.cli", "run", _source(size, fps, i),
                     "--live", "--max-frames", str(round(fps * seconds)),
                     "--publish", f"tcp://127.0.0.1:{_port()}", "--model", model,
                     "--device", "cpu", "--batch", "1", "--quiet", "--summary-json", str(path)]
                    for i, path in enumerate(summaries)]
        _, memory = _run_children(commands, seconds)
        runs = [json.loads(path.read_text()) for path in summaries]
    return {  # each run's own rate: frames over the time it ran, summed
        "fps": round(sum(r["frames_out"] / r["elapsed_s"] for r in runs), 2),
        "worst_p99_ms": max(r["latency_ms"]["p99"] or 0 for r in runs),
        "dropped": sum(sum(r["dropped"].values()) for r in runs),
        "rss_mib": memory,
    }


def child(model: str, count: int, size: str, fps: int, seconds: float) -> None:
    """Run ``count`` streams in one service until they end; print the result as JSON."""
    from streamer.config import build
    from streamer.service.config import ServeConfig
    from streamer.service.service import Service

    config = build(ServeConfig, {
        "model": {"device": "cpu"}, "batch": {"size": count, "max_delay_ms": 10},
        "streams": [{"id": f"cam{i}", "source": _source(size, fps, i), "live": True,
                     "model": model, "outputs": [{"publish": f"tcp://127.0.0.1:{_port()}"}]}
                    for i in range(count)],
    })
    service = Service(config)
    service.start()
    while not all(s.counts().totals["frames_out"] for s in service.streams.values()):
        time.sleep(0.1)  # every stream flows
    before = sum(s.counts().totals["frames_out"] for s in service.streams.values())
    time.sleep(seconds)
    described = [s.describe() for s in service.streams.values()]
    service.drain()
    print(json.dumps({
        "fps": round((sum(d["frames_out"] for d in described) - before) / seconds, 2),
        "worst_p99_ms": max(d["latency_ms"]["p99"] or 0 for d in described),
        "dropped": sum(d["dropped_queue"] + d["dropped_stale"] for d in described),
        "batch_sizes": {str(k): v for s in service.servers.values()
                        for k, v in sorted(s.stats.batch_sizes.items())},
    }))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        model, streams, size, fps, seconds = sys.argv[2:7]
        child(model, int(streams), size, int(fps), float(seconds))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dcp,hdm-s")
    parser.add_argument("--counts", default="1,2,4")
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=Path("out/bench_streams.json"))
    args = parser.parse_args()
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    rows: list[dict[str, Any]] = []  # JSON records
    report = {"card": card, "cpus": os.cpu_count(), "size": args.size, "fps": args.fps,
              "seconds": args.seconds, "rows": rows}
    for model in args.models.split(","):
        for count in (int(c) for c in args.counts.split(",")):
            row = {"model": model, "streams": count,
                   "one_engine": one_service(model, count, args.size, args.fps, args.seconds),
                   "processes": many_processes(model, count, args.size, args.fps,
                                               args.seconds)}
            rows.append(row)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2))
            print(json.dumps(row), flush=True)
    print(f"{card}, {os.cpu_count()} CPUs, {args.size} at {args.fps} fps per stream, "
          f"{args.seconds:g} s")
    print(f"{'model':<7}{'streams':>8} | {'fps':>7}{'p99 ms':>9}{'drops':>7}{'MiB':>7} | "
          f"{'fps':>7}{'p99 ms':>9}{'drops':>7}{'MiB':>7}   (one engine | processes)")
    for row in rows:
        one, many = row["one_engine"], row["processes"]
        cells = [f"{d['fps']:>7.1f}{d['worst_p99_ms']:>9.0f}{d['dropped']:>7}{d['rss_mib']:>7.0f}"
                 for d in (one, many)]
        print(f"{row['model']:<7}{row['streams']:>8} | {cells[0]} | {cells[1]}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
