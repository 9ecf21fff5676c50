"""Soak ``serve``: three live streams (the classical enhancer; ZeroMQ, UDP and HLS outputs) for
a wall-clock duration, sampling the process's resident memory, open files and threads, and the
streams' counters; a leak shows as a slope. JSON after every sample, so a cut run keeps what it
measured.

    python -m benchmarks.soak_serve --minutes 60 --json benchmarks/results/DATE-cpu-soak_serve.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from streamer.service.config import serve_config
from streamer.service.http import ApiServer
from streamer.service.service import Service


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _slope_per_hour(times: list[float], values: list[float]) -> float:
    """Least-squares slope, units per hour, over the second half (after warm-up)."""
    half = len(times) // 2
    if len(times) - half < 2:
        return float("nan")
    t, v = np.array(times[half:]) / 3600, np.array(values[half:])
    return float(np.polyfit(t, v, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--every-s", type=float, default=30.0)
    parser.add_argument("--json", type=Path, default=Path("out/soak_serve.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        live = "lavfi:{}=size=320x180:rate=25,realtime"
        config = serve_config({
            "http": {"port": 0}, "model": {"device": "cpu", "model": "dcp"},
            "streams": [
                {"id": "cam1", "input": live.format("testsrc2"),
                 "outputs": [{"type": "publish", "endpoint":
                              f"tcp://127.0.0.1:{_free_port(socket.SOCK_STREAM)}"}]},
                {"id": "cam2", "input": live.format("smptebars"),
                 "outputs": [{"type": "url", "url":
                              f"udp://127.0.0.1:{_free_port(socket.SOCK_DGRAM)}?pkt_size=1316"}]},
                {"id": "cam3", "input": live.format("testsrc"),
                 "outputs": [{"type": "hls", "path": str(Path(tmp) / "hls")}]},
            ],
        })
        service = Service(config)
        api = ApiServer(service, "127.0.0.1", 0)
        api.start()
        service.start()
        samples: list[dict[str, object]] = []
        started = time.monotonic()
        report = {"what": "serve soak: 3 live 320x180 lavfi streams, dcp, ZeroMQ/UDP/HLS outputs",
                  "minutes": args.minutes, "samples": samples}
        try:
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(args.every_s)
                streams = {s.spec.id: s.counts().totals for s in service.streams.values()}
                samples.append({
                    "t_s": round(time.monotonic() - started, 1),
                    "rss_mib": round(_resident_mib(), 1),
                    "fds": len(os.listdir("/proc/self/fd")),
                    "threads": len(os.listdir("/proc/self/task")),
                    "frames_out": {k: v["frames_out"] for k, v in streams.items()},
                    "dropped": {k: v["dropped_queue"] + v["dropped_stale"]
                                for k, v in streams.items()},
                })
                times = [float(s["t_s"]) for s in samples]  # type: ignore[arg-type]
                for key in ("rss_mib", "fds", "threads"):
                    report[f"{key}_slope_per_hour"] = _slope_per_hour(
                        times, [float(s[key]) for s in samples])  # type: ignore[arg-type]
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=2))
                print(samples[-1], flush=True)
        finally:
            service.drain()
            api.stop()
    print(f"RSS slope {report.get('rss_mib_slope_per_hour')} MiB/h, fds slope "
          f"{report.get('fds_slope_per_hour')}/h; wrote {args.json}")


if __name__ == "__main__":
    main()
