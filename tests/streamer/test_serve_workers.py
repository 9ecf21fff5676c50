"""serve with ``workers``: streams sharded over worker processes behind one supervisor.

The slow tests run the real command (a supervisor and two spawned workers), speak real HTTP on
127.0.0.1, parse /metrics with prometheus-client's parser, and SIGKILL a real worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer.errors import ConfigError
from streamer.service.config import (
    ServeConfig,
    StreamSpec,
    load_serve_config,
    serve_config,
    stream_spec,
)
from streamer.service.merge import Family, export, merge
from streamer.service.placement import Load, choose, plan, resolve_workers

TOKEN = "0123456789abcdef-workers"
LIVE = "lavfi:testsrc2=size=128x96:rate=25,realtime"


def spec(stream_id: str, task: str = "dehaze") -> StreamSpec:
    return stream_spec({"id": stream_id, "input": LIVE,
                        "model": {"model": "dcp", "task": task}}, ServeConfig())


# -- placement, the workers setting, the merge: plain functions ---------------------------------
def test_a_key_s_streams_stay_together_up_to_a_fair_share() -> None:
    same = [spec(f"a{i}") for i in range(4)]
    assert [[s.id for s in w] for w in plan(same, 2)] == [["a0", "a1"], ["a2", "a3"]]
    mixed = [spec("a0"), spec("b0", "lowlight"), spec("a1"), spec("c0", "derain"), spec("a2")]
    assert [[s.id for s in w] for w in plan(mixed, 2)] == [["a0", "a1", "a2"], ["b0", "c0"]]
    assert plan([], 3) == [[], [], []]


def test_an_added_stream_goes_to_its_engine_under_a_fair_share_else_the_least_loaded() -> None:
    a, b = ("dcp", "dehaze", "default"), ("dcp", "lowlight", "default")
    loads = [Load(0, True, 2, frozenset({a})), Load(1, True, 3, frozenset({b})),
             Load(2, True, 1, frozenset({b}))]
    assert choose(a, loads) == 0  # its engine there, under ceil(7 / 3) = 3
    assert choose(("dcp", "derain", "default"), loads) == 2  # a new key: the least loaded
    full = [Load(0, True, 3, frozenset({a})), Load(1, True, 1, frozenset())]
    assert choose(a, full) == 1  # its worker is at the fair share: split
    down = [Load(0, False, 0, frozenset()), Load(1, True, 5, frozenset())]
    assert choose(a, down) == 1  # only running workers take streams
    assert choose(a, [Load(0, False, 0, frozenset())]) is None


def test_workers_auto_is_a_worker_a_core_up_to_the_streams_and_one_on_a_gpu() -> None:
    four = serve_config({"streams": [{"id": f"c{i}", "input": LIVE} for i in range(4)]})
    assert four.workers == "auto"
    assert resolve_workers(four, cores=2, gpu=False) == 2
    assert resolve_workers(four, cores=1, gpu=False) == 1  # in this process
    assert resolve_workers(four, cores=16, gpu=False) == 4  # no more than the streams
    assert resolve_workers(four, cores=16, gpu=True) == 1
    one = serve_config({"streams": [{"id": "c", "input": LIVE}]})
    assert resolve_workers(one, cores=2, gpu=False) == 1
    assert resolve_workers(serve_config({}), cores=2, gpu=False) == 1
    assert resolve_workers(serve_config({"workers": 3}), cores=2) == 3


@pytest.mark.parametrize("value", ["0", "-1", "65", "'two'", "1.5", "true"])
def test_a_bad_workers_value_is_one_line_naming_the_key(tmp_path: Path, value: str) -> None:
    """(main prints a ConfigError as this one line, exit 2: test_serve.py)"""
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"workers: {value}\nstreams: []\n")
    with pytest.raises(ConfigError) as refused:
        load_serve_config(cfg)
    assert "workers" in str(refused.value) and "\n" not in str(refused.value)


def test_merged_metrics_have_each_series_once_adding_what_two_processes_share() -> None:
    def part(stream: str, frames: float, rss: float, start: float) -> list[Family]:
        return [("hdm_stream_frames_out", "Frames", "counter", "",
                 [("hdm_stream_frames_out_total", {"stream": stream}, frames)]),
                ("hdm_stream_engine_inference_seconds", "Busy", "counter", "",
                 [("hdm_stream_engine_inference_seconds_total",
                   {"engine": "dehaze/dcp", "weights": "default"}, frames / 10)]),
                ("process_resident_memory_bytes", "RSS", "gauge", "bytes",
                 [("process_resident_memory_bytes", {}, rss)]),
                ("process_start_time_seconds", "Start", "gauge", "seconds",
                 [("process_start_time_seconds", {}, start)])]

    merged = {m.name: {(s.name, tuple(s.labels.items())): s.value for s in m.samples}
              for m in merge([part("cam1", 10, 100, 5), part("cam2", 20, 50, 3)])}
    assert merged["hdm_stream_frames_out"] == {
        ("hdm_stream_frames_out_total", (("stream", "cam1"),)): 10,
        ("hdm_stream_frames_out_total", (("stream", "cam2"),)): 20}
    assert list(merged["hdm_stream_engine_inference_seconds"].values()) == [3.0]
    assert merged["process_resident_memory_bytes"] == {("process_resident_memory_bytes", ()): 150}
    assert merged["process_start_time_seconds"] == {("process_start_time_seconds", ()): 3}
    from prometheus_client import ProcessCollector

    assert export([ProcessCollector(registry=None)])[0][0] == "process_virtual_memory_bytes"


# -- the real command ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """``hdm-stream serve`` in a process of its own; its log lines gathered as they come."""

    def __init__(self, tmp_path: Path, streams: list[dict[str, Any]], **extra: Any) -> None:
        self.port = free_port()
        cfg = tmp_path / "serve.json"
        cfg.write_text(json.dumps({  # JSON is YAML
            "http": {"token": TOKEN, "allow_lavfi": True}, "model": {"device": "cpu"},
            "workers": 2, "streams": streams, **extra}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamer.cli", "serve", str(cfg), "--port", str(self.port)],
            stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        return "\n".join(self.lines)

    def request(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                raw, status = response.read(), response.status
                kind = response.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            raw, status, kind = error.read(), error.code, error.headers["Content-Type"]
        if kind.startswith("application/json"):
            return status, json.loads(raw)
        return status, raw if kind.startswith("image/") else raw.decode()

    def streams(self) -> dict[str, dict[str, Any]]:
        status, body = self.request("/streams")
        assert status == 200, body
        return {s["id"]: s for s in body}

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        status, text = self.request("/metrics")
        assert status == 200
        return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text)
                for s in family.samples]

    def sample(self, name: str, **labels: str) -> float | None:
        return next((v for n, ls, v in self.samples() if n == name and ls == labels), None)

    def worker_pid(self, stream_id: str, after: int = 0) -> int:
        """The pid of the worker the log says runs ``stream_id`` (its start lines from the
        ``after``-th on)."""
        pattern = re.compile(rf"worker \d+ \(pid (\d+)\): .*\b{stream_id}\b")
        found = [int(m.group(1)) for m in map(pattern.search, self.lines) if m]
        assert len(found) > after, self.log()
        return found[after]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return self.process.returncode


@contextlib.contextmanager
def serving(tmp_path: Path, streams: list[dict[str, Any]], **extra: Any) -> Iterator[Serve]:
    serve = Serve(tmp_path, streams, **extra)
    try:
        wait_for(lambda: _ready(serve), 60, serve)
        yield serve
    finally:
        serve.stop()


def _ready(serve: Serve) -> bool:
    assert serve.process.poll() is None, serve.log()
    try:
        return serve.request("/readyz")[0] == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def wait_for(condition: Callable[[], bool], timeout: float, serve: Serve) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out; serve's log:\n{serve.log()}"
        time.sleep(0.2)


def flowing(serve: Serve, *ids: str, more_than: int = 0) -> Callable[[], bool]:
    def check() -> bool:
        now = serve.streams()
        return all(now[i]["state"] == "up" and now[i]["frames_out"] > more_than for i in ids)
    return check


def stream(stream_id: str, task: str = "dehaze", **extra: Any) -> dict[str, Any]:
    return {"id": stream_id, "input": LIVE, "model": {"model": "dcp", "task": task}, **extra}


@pytest.mark.slow
def test_two_workers_answer_the_api_merge_metrics_and_route_adds_and_removes(
    tmp_path: Path
) -> None:
    with serving(tmp_path, [stream("cam1"), stream("cam2", "lowlight")]) as serve:
        wait_for(flowing(serve, "cam1", "cam2", more_than=5), 30, serve)
        assert serve.worker_pid("cam1") != serve.worker_pid("cam2")
        assert serve.request("/healthz") == (200, "ok\n")
        status, one = serve.request("/streams/cam2")
        assert status == 200 and one["engine"].startswith("dcp (lowlight)")
        wait_for(lambda: serve.streams()["cam1"]["preview"], 15, serve)
        status, jpeg = serve.request("/streams/cam1/preview.jpg")
        assert status == 200 and jpeg[:2] == b"\xff\xd8"
        assert serve.request("/streams/cam1/view")[0] == 200
        assert serve.request("/streams/nope/preview.jpg")[0] == 404

        samples = serve.samples()
        keys = [(name, tuple(sorted(labels.items()))) for name, labels, _ in samples]
        assert len(keys) == len(set(keys)), "a series twice"
        frames = {labels["stream"]: value for name, labels, value in samples
                  if name == "hdm_stream_frames_out_total"}
        assert set(frames) == {"cam1", "cam2"} and min(frames.values()) > 0  # both workers
        assert sum(1 for name, _, _ in samples if name == "process_resident_memory_bytes") == 1
        engines = {labels["engine"] for name, labels, _ in samples
                   if name == "hdm_stream_engine_inference_seconds_total"}
        assert engines == {"dehaze/dcp", "lowlight/dcp"}
        assert serve.sample("hdm_stream_worker_up", worker="1") == 1

        # a new engine key goes to the least-loaded worker (a tie: the first); the next, to
        # the other, as the first is at its fair share
        assert serve.request("/streams", "POST", stream("cam3", "derain"))[0] == 201
        assert serve.request("/streams", "POST", stream("cam4", "derain"))[0] == 201
        assert serve.request("/streams", "POST", stream("cam2"))[0] == 409  # taken id
        # logged before the 201 went out, but read from serve's stderr by another thread
        wait_for(lambda: "stream cam3 added to worker 0" in serve.log(), 5, serve)
        wait_for(lambda: "stream cam4 added to worker 1" in serve.log(), 5, serve)
        assert [serve.sample("hdm_stream_worker_streams", worker=w) for w in "01"] == [2, 2]
        wait_for(flowing(serve, "cam3", "cam4"), 20, serve)
        assert list(serve.streams()) == ["cam1", "cam2", "cam3", "cam4"]

        assert serve.request("/streams/cam1", "DELETE") == (200, {"removed": "cam1"})
        assert serve.request("/streams/cam1")[0] == 404
        assert serve.request("/streams/cam1", "DELETE")[0] == 404
        assert [serve.sample("hdm_stream_worker_streams", worker=w) for w in "01"] == [1, 2]
        assert serve.sample("hdm_stream_frames_out_total", stream="cam1") is None
        before = serve.streams()["cam3"]["frames_out"]
        wait_for(flowing(serve, "cam3", more_than=before), 10, serve)  # its neighbour runs on
    assert serve.process.returncode == 0, serve.log()
    assert "cam3: stopped" in serve.log() and "Traceback" not in serve.log()


@pytest.mark.slow
def test_a_killed_worker_comes_back_with_its_stream_counted_then_backs_off(
    tmp_path: Path
) -> None:
    recording = tmp_path / "cam1.mp4"  # fragmented: written as it goes, readable after a kill
    streams = [stream("cam1", outputs=[{"type": "file", "path": str(recording)}]),
               stream("cam2", "lowlight")]
    fast = {"encoder_options": {"tune": "zerolatency"}}  # no lookahead: the first fragment soon
    with serving(tmp_path, streams, encode=fast) as serve:
        wait_for(flowing(serve, "cam1", "cam2"), 30, serve)
        wait_for(lambda: recording.stat().st_size > 0, 30, serve)
        other = serve.streams()["cam2"]["frames_out"]
        written = recording.stat().st_size
        os.kill(serve.worker_pid("cam1"), signal.SIGKILL)
        wait_for(lambda: serve.sample("hdm_stream_worker_restarts_total", worker="0") == 1,
                 15, serve)
        wait_for(flowing(serve, "cam1"), 30, serve)  # back, counting afresh
        assert serve.streams()["cam2"]["frames_out"] > other  # the other worker never stopped
        assert re.search(r"worker 0 \(pid \d+\) died \(killed by SIGKILL\); starting it again "
                         r"with cam1", serve.log())
        assert recording.stat().st_size >= written  # what the dead worker wrote is kept
        assert serve.streams()["cam1"]["outputs"] == [str(tmp_path / "cam1.1.mp4")]

        # dead again within 30 s of its start: it waits before the next, and says why
        os.kill(serve.worker_pid("cam1", after=1), signal.SIGKILL)
        wait_for(lambda: "backing off" in serve.log(), 15, serve)
        assert re.search(r"worker 0 \(pid \d+\) died \(killed by SIGKILL\), 2 times in a row "
                         r"within 30 s of starting: backing off, next start in 1 s, with cam1",
                         serve.log())
        wait_for(flowing(serve, "cam1"), 30, serve)
        assert serve.sample("hdm_stream_worker_restarts_total", worker="0") == 2
        assert serve.sample("hdm_stream_worker_restarts_total", worker="1") == 0
    assert serve.process.returncode == 0, serve.log()
    import av

    for name in ("cam1.mp4", "cam1.2.mp4"):  # the killed worker's fragments, the last run's
        with av.open(str(tmp_path / name)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0


@pytest.mark.slow
def test_a_worker_that_cannot_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "weights.pt"
    bad.write_text("not a checkpoint")
    cfg = tmp_path / "serve.json"
    cfg.write_text(json.dumps({
        "http": {"port": free_port(), "token": TOKEN}, "model": {"device": "cpu"},
        "workers": 2, "streams": [stream("cam1"), {**stream("cam2"), "model": {
            "model": "hdm-s", "weights": str(bad)}}]}))
    done = subprocess.run([sys.executable, "-m", "streamer.cli", "serve", str(cfg)],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "cannot be built" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
