"""hdm-stream serve: three streams through one engine, the HTTP API, Prometheus metrics."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer.service.config import ServeConfig, serve_config
from streamer.service.http import ApiServer
from streamer.service.service import Service

LIVE = "lavfi:testsrc2=size=128x96:rate=25,realtime"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(http: dict[str, Any] | None = None, **extra: Any) -> ServeConfig:
    """Two live lavfi streams and a dead one (lavfi sources allowed over HTTP unless ``http``
    says otherwise)."""
    silent = f"udp://127.0.0.1:{free_udp_port()}"  # nothing is ever sent there
    return serve_config({
        "http": {"port": 0, "allow_lavfi": True, **(http or {})},
        "model": {"device": "cpu"},
        "source": {"reconnect": {"watchdog_s": 0.5, "backoff_initial_s": 0.2,
                                 "backoff_max_s": 0.5}},
        "streams": [
            {"id": "cam1", "input": LIVE, "model": {"model": "dcp"}},
            {"id": "cam2", "input": LIVE.replace("testsrc2", "smptebars"),
             "model": {"model": "dcp"}},
            {"id": "dead", "input": silent, "model": {"model": "dcp"}},
        ],
        **extra,
    })


@contextlib.contextmanager
def serving(config: ServeConfig) -> Iterator[ApiServer]:
    """The service of ``config`` with its HTTP API on a free port, drained at the end."""
    service = Service(config)
    server = ApiServer(service, "127.0.0.1", 0)
    server.start()
    service.start()
    try:
        yield server
    finally:
        service.drain()
        server.stop()


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with serving(config()) as server:
        yield server


def request(api: ApiServer, path: str, method: str = "GET", body: Any = None,
            headers: dict[str, str] | None = None, token: bool = True) -> tuple[int, Any]:
    """A real HTTP request on loopback, with the API token unless ``token`` is False."""
    data = None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"}
    if token and api.token is not None:
        sent["Authorization"] = f"Bearer {api.token}"
    sent.update(headers or {})
    req = urllib.request.Request(f"http://127.0.0.1:{api.port}{path}", data=data, method=method,
                                 headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            raw, status, kind = response.read(), response.status, response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        raw, status, kind = error.read(), error.code, error.headers["Content-Type"]
    return status, json.loads(raw) if kind.startswith("application/json") else raw.decode()


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def in_process(api: ApiServer) -> Service:
    """The service ``api`` serves in this process (not worker processes behind it)."""
    assert isinstance(api.service, Service), type(api.service).__name__
    return api.service


def streams(api: ApiServer) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in request(api, "/streams")[1]}


def samples(api: ApiServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = request(api, "/metrics")
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.slow
def test_streams_share_an_engine_and_a_dead_one_stalls_nobody(api: ApiServer) -> None:
    wait_for(lambda: all(streams(api)[i]["frames_out"] > 20 for i in ("cam1", "cam2")))
    now = streams(api)
    assert now["cam1"]["state"] == "up" and now["cam1"]["up"]
    assert now["dead"]["state"] == "down" and not now["dead"]["up"]
    assert now["dead"]["last_error"]
    assert len(in_process(api).servers) == 1  # one engine for the two dcp/dehaze streams and more
    engine = next(iter(in_process(api).servers.values()))
    assert max(engine.stats.batch_sizes) >= 2  # frames of both streams ran together

    first = samples(api)
    time.sleep(1.0)
    second = samples(api)
    key = ("hdm_stream_frames_out_total", (("stream", "cam1"),))
    assert second[key] > first[key] > 0  # a counter that rises
    assert second[("hdm_stream_up", (("stream", "cam1"),))] == 1
    assert second[("hdm_stream_up", (("stream", "dead"),))] == 0
    assert second[("hdm_stream_reconnects_total", (("stream", "dead"),))] >= 1
    # cam1 has no output but the preview, which is not one: no latency series
    assert not any(name == "hdm_stream_latency_seconds_count" and ("stream", "cam1") in labels
                   for name, labels in second)
    assert ("hdm_stream_frames_dropped_total", (("reason", "stale"), ("stream", "cam2"))) \
        in second
    engine_labels = (("engine", "auto/dcp"), ("weights", "default"))
    assert second[("hdm_stream_engine_batch_size_count", engine_labels)] > 0
    assert ("process_resident_memory_bytes", ()) in second
    assert request(api, "/healthz") == (200, "ok\n")
    status, body = request(api, "/readyz")  # not ready while a stream is down
    assert status == 503 and body["streams"] == {"dead": "down"}


@pytest.mark.slow
def test_streams_are_added_and_removed_at_run_time(api: ApiServer) -> None:
    spec = {"id": "cam4", "input": LIVE, "model": {"model": "dcp", "task": "dehaze"}}
    status, body = request(api, "/streams", "POST", spec)
    assert status == 201 and body["id"] == "cam4"
    assert request(api, "/streams", "POST", spec)[0] == 409
    status, body = request(api, "/streams", "POST",
                           {"id": "x", "input": LIVE, "model": {"task": "blur"}})
    assert status == 400 and "stream.model.task" in body["error"]
    assert request(api, "/streams", "POST", {"id": "y"})[0] == 400
    wait_for(lambda: streams(api)["cam4"]["frames_out"] > 5)
    assert request(api, "/streams/cam4", "DELETE")[0] == 200
    assert "cam4" not in streams(api)
    assert request(api, "/streams/cam4", "DELETE")[0] == 404
    assert request(api, "/streams/nope")[0] == 404


def test_the_shipped_example_config_loads_as_written() -> None:
    from pathlib import Path

    from streamer.service.config import load_serve_config

    loaded = load_serve_config(Path(__file__).parents[2] / "configs" / "serve.yaml")
    assert [s.id for s in loaded.streams] == ["cam1", "cam2"]
    assert [o.label for o in loaded.streams[1].outputs] == [
        "udp://127.0.0.1:5600?pkt_size=1316", "/var/www/cam2/"]


@pytest.mark.slow
def test_serve_command_drains_on_sigterm_and_exits_0(tmp_path: Any) -> None:
    import signal
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recording = tmp_path / "cam1.mkv"
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "model": {"device": "cpu"},
        "streams": [{"id": "cam1", "input": LIVE, "model": {"model": "dcp"},
                     "outputs": [{"type": "file", "path": str(recording)}]}],
    }))
    process = subprocess.Popen([sys.executable, "-m", "streamer.cli", "serve", str(cfg),
                                "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        api_url = f"http://127.0.0.1:{port}/streams/cam1"
        deadline = time.monotonic() + 60
        frames = 0
        while frames < 25 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(api_url, timeout=2) as response:
                    frames = json.loads(response.read())["frames_out"]
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.3)
        assert frames >= 25
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "draining" in err and "cam1: stopped" in err
    import av

    with av.open(str(recording)) as container:  # the recording was finished properly
        assert sum(1 for _ in container.decode(video=0)) >= 25


def test_a_bad_serve_config_is_one_line_naming_the_key(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamer.cli import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("streams:\n  - id: cam1\n    input: x.mp4\n    outputs:\n"
                   "      - {type: url, url: gopher://host/x}\n")
    assert main(["serve", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "streams[0].outputs[0]" in err[0] and "gopher" in err[0]
