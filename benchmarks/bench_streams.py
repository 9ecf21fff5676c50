"""N live streams through one engine (``serve``) against N separate ``run`` processes.

Each stream is a real-time lavfi source marked live (it drops rather than queueing latency up,
as a camera does), enhanced and published over ZeroMQ. Reported per configuration: total output
fps, the worst stream's p99 latency (decoded to published), frames dropped, and the resident
memory of all processes together, sampled mid-run. Both sides run as child processes, so that
each memory figure is theirs alone.

    python -m benchmarks.bench_streams --models dcp,hdm-s --counts 1,2,4 --seconds 10

``--workers 1,2`` compares instead ``hdm-stream serve`` with each ``workers`` setting against
one ``hdm-stream run`` per stream, all measured alike from outside (issue 18, item 5): a
ZeroMQ subscriber per stream counts what arrives in the same window after a warm-up (frames
delivered; dropped: the gaps in ``seq``, frames decoded but never published; latency: capture
to arrival), memory is the RSS (and PSS, which counts a page shared by several processes once)
of each command's whole process tree, and the CPU the rest of the machine used meanwhile is
recorded (other work shares the cores):

    python -m benchmarks.bench_streams --workers 1,2 --model hdm-s --streams 4 \
        --size 640x360 --fps 25 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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
                     "--task", "dehaze",
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
    from streamer.service.config import serve_config
    from streamer.service.service import Service

    config = serve_config({
        "model": {"device": "cpu", "model": model, "task": "dehaze"}, "source": {"live": True},
        "batch": {"size": count, "max_delay_ms": 10},
        "streams": [{"id": f"cam{i}", "input": _source(size, fps, i), "outputs": [
            {"type": "publish", "endpoint": f"tcp://127.0.0.1:{_port()}"}]} for i in range(count)],
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


class _Arrivals(threading.Thread):
    """Every frame one stream publishes, as (arrival, seq, capture time), until stopped."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.frames: list[tuple[float, int, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        from streamer.publish.subscriber import Subscriber

        with Subscriber(self.endpoint, hwm=16) as subscriber:
            while not self.stopped.is_set():
                message = subscriber.recv(0.2)
                if message is not None and not message.end:
                    header = message.header
                    self.frames.append((time.time(), int(header["seq"]),
                                        float(header["capture_time"])))


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a supervisor's workers and their helpers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def _memory_mib(pids: list[int]) -> tuple[float, float]:
    """RSS and PSS of ``pids`` together, MiB."""
    rss = pss = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(("Rss:", "Pss:")):
                    kib = int(line.split()[1]) / 1024
                    rss, pss = (rss + kib, pss) if line.startswith("Rss:") else (rss, pss + kib)
        except OSError:
            pass
    return rss, pss


def _cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """The machine's busy CPU ticks so far, and those of ``pids`` (user + system)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(f) for f in fields) - int(fields[3]) - int(fields[4])  # less idle, iowait
    ours = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ours += int(stat[11]) + int(stat[12])
        except OSError:
            pass
    return busy, ours


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(commands: list[list[str]], endpoints: list[str], warmup: float, seconds: float
            ) -> dict[str, Any]:
    """Run ``commands`` (their streams publishing at ``endpoints``), wait until every stream
    delivers and ``warmup`` more, then measure ``seconds``; SIGTERM them all at the end."""
    arrivals = [_Arrivals(endpoint) for endpoint in endpoints]
    for thread in arrivals:
        thread.start()
    launched = time.monotonic()
    children = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for c in commands]
    try:
        while not all(a.frames for a in arrivals):
            if any(c.poll() is not None for c in children):
                raise SystemExit(f"a command ended before its streams flowed: {commands}")
            time.sleep(0.2)
        startup = time.monotonic() - launched
        time.sleep(warmup)
        pids = [pid for c in children for pid in _tree(c.pid)]
        ticks_before, start, samples = _cpu_ticks([os.getpid(), *pids]), time.time(), []
        load_before = os.getloadavg()[0]
        for _ in range(3):  # memory a quarter, a half and three quarters in
            time.sleep(seconds / 4)
            samples.append(_memory_mib(pids))
        time.sleep(seconds / 4)
        end = time.time()
        ticks_after = _cpu_ticks([os.getpid(), *pids])
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
        for thread in arrivals:
            thread.stopped.set()
    delivered = decoded = 0
    latencies: list[float] = []
    for thread in arrivals:
        window = [f for f in thread.frames if start <= f[0] < end]
        delivered += len(window)
        decoded += window[-1][1] - window[0][1] + 1 if window else 0
        latencies += [arrival - captured for arrival, _, captured in window]
    tick = os.sysconf("SC_CLK_TCK")
    machine, ours = (after - before for after, before in zip(ticks_after, ticks_before,
                                                             strict=True))
    p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
    return {
        "fps": round(delivered / (end - start), 2),
        "offered_fps": round(decoded / (end - start), 2),
        "dropped": decoded - delivered,
        "dropped_pct": round(100 * (decoded - delivered) / decoded, 1) if decoded else None,
        "p50_ms": None if p50 is None else round(p50 * 1000),
        "p99_ms": None if p99 is None else round(p99 * 1000),
        "rss_mib": round(sum(r for r, _ in samples) / len(samples)),
        "pss_mib": round(sum(p for _, p in samples) / len(samples)),
        "processes": len(pids), "startup_s": round(startup, 1),
        "cpu_cores_ours": round(ours / tick / (end - start), 2),
        "cpu_cores_others": round(max(0, machine - ours) / tick / (end - start), 2),
        "load_1min_before": round(load_before, 2), "load_1min_after": round(os.getloadavg()[0], 2),
    }


def serve_command(model: str, streams: int, size: str, fps: int, workers: int, folder: Path
                  ) -> tuple[list[str], list[str]]:
    """``hdm-stream serve`` of ``streams`` live streams with ``workers``; its endpoints."""
    endpoints = [f"tcp://127.0.0.1:{_port()}" for _ in range(streams)]
    config = folder / f"serve-{workers}.json"
    config.write_text(json.dumps({  # JSON is YAML
        "http": {"port": _port(), "token": "bench-streams-token-0123"},
        "model": {"device": "cpu", "model": model, "task": "dehaze"}, "source": {"live": True},
        "workers": workers,
        "streams": [{"id": f"cam{i}", "input": _source(size, fps, i),
                     "outputs": [{"type": "publish", "endpoint": endpoint}]}
                    for i, endpoint in enumerate(endpoints)]}))
    return [sys.executable, "-m", "streamer.cli", "serve", str(config)], endpoints


def compare_workers(args: argparse.Namespace) -> None:
    """serve with each ``--workers`` value and one ``run`` process per stream, ``--repeat``
    rounds, every other one in reverse order (the machine's other load drifts); the table
    gives each setup's median."""
    setups = [f"serve, workers {w}" for w in args.workers.split(",")]
    setups.append(f"{args.streams} run processes")
    rows: list[dict[str, Any]] = []
    others = subprocess.run(["ps", "-eo", "pcpu,etimes,comm", "--sort=-pcpu"],
                            capture_output=True, text=True).stdout.splitlines()[:8]
    report = {"cpus": os.cpu_count(), "model": args.model, "streams": args.streams,
              "size": args.size, "fps": args.fps, "warmup_s": args.warmup,
              "seconds": args.seconds, "busiest_processes_at_start": others, "rows": rows,
              "median": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):
            for setup in setups if round_ % 2 == 0 else setups[::-1]:
                commands, endpoints = _setup(setup, args, Path(tmp))
                rows.append({"setup": setup, "round": round_,
                             **measure(commands, endpoints, args.warmup, args.seconds)})
                rows[-1]["fps_per_core"] = round(rows[-1]["fps"] / rows[-1]["cpu_cores_ours"], 1)
                print(json.dumps(rows[-1]), flush=True)
    keys = ("fps", "offered_fps", "dropped_pct", "p50_ms", "p99_ms", "rss_mib", "pss_mib",
            "cpu_cores_ours", "cpu_cores_others", "fps_per_core")
    median = {setup: {key: statistics.median(r[key] for r in rows if r["setup"] == setup)
                      for key in keys} for setup in setups}
    report["median"] = median
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"{os.cpu_count()} CPUs, {args.streams} x {args.model} {args.size} at {args.fps} fps, "
          f"{args.seconds:g} s after {args.warmup:g} s of warm-up, median of {args.repeat}")
    print(f"{'setup':<18}{'fps':>7}{'offered':>9}{'drops':>7}{'p50':>6}{'p99':>6}{'RSS':>6}"
          f"{'PSS':>6}{'cores':>7}{'others':>8}{'fps/core':>9}")
    for setup, m in median.items():
        print(f"{setup:<18}{m['fps']:>7.1f}{m['offered_fps']:>9.1f}{m['dropped_pct']:>6.1f}%"
              f"{m['p50_ms']:>6.0f}{m['p99_ms']:>6.0f}{m['rss_mib']:>6.0f}{m['pss_mib']:>6.0f}"
              f"{m['cpu_cores_ours']:>7.2f}{m['cpu_cores_others']:>8.2f}{m['fps_per_core']:>9.1f}")
    print(f"wrote {args.json}")


def _setup(setup: str, args: argparse.Namespace, folder: Path
           ) -> tuple[list[list[str]], list[str]]:
    """The commands of one setup and the endpoints its streams publish at."""
    if setup.startswith("serve"):
        command, endpoints = serve_command(args.model, args.streams, args.size, args.fps,
                                           int(setup.rsplit(" ", 1)[1]), folder)
        return [command], endpoints
    endpoints = [f"tcp://127.0.0.1:{_port()}" for _ in range(args.streams)]
    return [[sys.executable, "-m", "streamer.cli", "run", _source(args.size, args.fps, i),
             "--live", "--publish", endpoint, "--payload", "jpeg", "--model", args.model,
             "--task", "dehaze",
             "--device", "cpu", "--batch", "1", "--quiet"]
            for i, endpoint in enumerate(endpoints)], endpoints


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
    parser.add_argument("--workers", help="compare serve with these workers settings (1,2) "
                        "against one run process per stream instead")
    parser.add_argument("--model", default="hdm-s", help="(--workers) the model")
    parser.add_argument("--streams", type=int, default=4, help="(--workers) live streams")
    parser.add_argument("--repeat", type=int, default=1, help="(--workers) rounds")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="(--workers) seconds after every stream flows, before measuring")
    args = parser.parse_args()
    if args.workers:
        compare_workers(args)
        return
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
