"""Load ``serve``'s HTTP side on loopback: ``hdm-stream serve`` in a process of its own with one
live stream (the classical enhancer on a 320x180 lavfi source, the preview at 5 fps), then

1. ``--clients`` (200) clients at once, each with its own connection, each making
   ``--requests`` (5) GETs over /streams, /metrics, /streams/cam1, /streams/cam1/preview.jpg
   and /healthz;
2. ``--pollers`` (50) clients polling /streams/cam1/preview.jpg back to back for
   ``--seconds`` (10).

A request fails on a status other than 200, a connection error, or no answer within 30 s.
Bounded: at most 1000 clients, 200 requests each, 120 s of polling, and a deadline for the
whole run; loopback only (the server listens on 127.0.0.1 and nothing else is contacted).

    python -m benchmarks.load_http [--json benchmarks/results/DATE-cpu-load_http.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

PATHS = ("/streams", "/metrics", "/streams/cam1", "/streams/cam1/preview.jpg", "/healthz")
TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _summary(times: list[float], failures: int, seconds: float) -> dict[str, Any]:
    ms = np.array(times) * 1000 if times else np.array([np.nan])
    return {"ok": len(times), "failed": failures, "seconds": round(seconds, 2),
            "requests_per_s": round(len(times) / seconds, 1) if seconds else None,
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(np.max(ms)), 1)}


async def _get(session: aiohttp.ClientSession, url: str, times: list[float]) -> bool:
    started = time.perf_counter()
    try:
        async with session.get(url) as response:
            await response.read()
            if response.status != 200:
                return False
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False
    times.append(time.perf_counter() - started)
    return True


async def _burst(base: str, clients: int, requests: int) -> dict[str, Any]:
    times: list[float] = []
    failures = 0
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    start = asyncio.Event()

    async def client(i: int) -> int:
        # one connection per client, all of them open at once
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await start.wait()
            failed = 0
            for r in range(requests):
                failed += not await _get(session, base + PATHS[(i + r) % len(PATHS)], times)
            return failed

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    start.set()
    for failed in await asyncio.gather(*tasks):
        failures += failed
    return _summary(times, failures, time.perf_counter() - started)


async def _poll(base: str, pollers: int, seconds: float) -> dict[str, Any]:
    times: list[float] = []
    failures = 0
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    started = time.perf_counter()
    deadline = started + seconds

    async def poller() -> int:
        failed = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1),
                                         timeout=timeout) as session:
            while time.perf_counter() < deadline:
                failed += not await _get(session, base + PATHS[3], times)
        return failed

    for failed in await asyncio.gather(*(poller() for _ in range(pollers))):
        failures += failed
    return _summary(times, failures, time.perf_counter() - started)


def _wait_for_picture(base: str, process: subprocess.Popen[str], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + PATHS[3], timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("serve gave no preview picture in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (1 <= args.clients <= 1000 and 1 <= args.requests <= 200
            and 0 <= args.pollers <= 1000 and 0 < args.seconds <= 120):
        parser.error("bounds: --clients 1..1000, --requests 1..200, --pollers 0..1000, "
                     "--seconds (0, 120]")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "serve.yaml"
        config.write_text(json.dumps({  # JSON is YAML
            "http": {"host": "127.0.0.1", "port": port, "access_log": False},
            "model": {"device": "cpu"}, "preview_fps": 5,
            "streams": [{"id": "cam1", "model": "dcp",
                         "source": "lavfi:testsrc2=size=320x180:rate=25,realtime"}]}))
        log = Path(tmp) / "serve.log"
        with log.open("w") as err:
            process = subprocess.Popen([sys.executable, "-m", "streamer.cli", "serve",
                                        str(config)], stderr=err, text=True)
        try:
            _wait_for_picture(base, process, 120)
            burst = asyncio.run(asyncio.wait_for(
                _burst(base, args.clients, args.requests), 300))
            poll = asyncio.run(asyncio.wait_for(
                _poll(base, args.pollers, args.seconds), args.seconds + 60)) \
                if args.pollers else None
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        tracebacks = log.read_text().count("Traceback")
    result = {"machine": f"{os.cpu_count()} CPUs", "clients": args.clients,
              "requests_per_client": args.requests, "burst": burst,
              "pollers": args.pollers, "poll_seconds": args.seconds, "poll": poll,
              "tracebacks_in_serve_log": tracebacks, "serve_exit": process.returncode}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
