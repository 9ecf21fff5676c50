"""serve that cannot be turned against its host (issue 19), over real HTTP on 127.0.0.1: the
token, Host and Origin checks, outputs and sources confined, requests judged before they are
accepted, errors as JSON, 405 with Allow, clients that hang up, 200 clients at once, metrics
per output, engines released."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamer.errors import ConfigError
from streamer.service.config import HttpSettings, ServeConfig, serve_config
from streamer.service.http import TOKEN_ENV, ApiServer
from streamer.sinks.network import UrlTarget
from tests.streamer.test_serve import (
    LIVE,
    free_udp_port,
    in_process,
    request,
    samples,
    serving,
    wait_for,
)

TOKEN = "t0ken-for-the-tests-only"


def make(http: dict[str, Any] | None = None, streams: list[dict[str, Any]] | None = None
         ) -> ServeConfig:
    return serve_config({
        "http": {"port": 0, "token": TOKEN, **(http or {})},
        "model": {"device": "cpu"},
        "source": {"reconnect": {"watchdog_s": 0.5, "backoff_initial_s": 0.2,
                                 "backoff_max_s": 0.5}},
        "streams": streams or [],
    })


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with serving(make()) as server:
        yield server


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw(api: ApiServer, data: bytes, read: bool = True) -> bytes:
    """Bytes sent as they are on a plain socket; the answer, as bytes."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as s:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


UDP_SPEC = {"id": "net", "input": f"udp://127.0.0.1:{free_udp_port()}",
            "model": {"model": "dcp"}}


# -- 1. authentication, Host and Origin -------------------------------------------------------
def test_writes_need_the_token_and_reads_do_not(api: ApiServer) -> None:
    status, body = request(api, "/streams", "POST", UDP_SPEC, token=False)
    assert status == 401 and "token" in body["error"]
    wrong = {"Authorization": "Bearer not-the-token"}
    assert request(api, "/streams", "POST", UDP_SPEC, wrong, token=False)[0] == 401
    assert request(api, "/streams/net", "DELETE", token=False)[0] == 401
    assert request(api, "/streams", token=False) == (200, [])
    assert request(api, "/streams", "POST", UDP_SPEC)[0] == 201
    assert request(api, "/streams/net", "DELETE")[0] == 200


def test_auth_all_needs_the_token_for_reads_too_and_a_browser_gets_a_cookie() -> None:
    with serving(make({"auth": "all"})) as api:
        assert request(api, "/streams", token=False)[0] == 401
        assert request(api, "/streams")[0] == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{api.port}/?token={TOKEN}",
                                    timeout=10) as response:
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        jar = {"Cookie": cookie.split(";")[0]}
        assert request(api, "/streams", headers=jar, token=False)[0] == 200
        # a cookie never authorises a write (a cross-site form could carry it)
        assert request(api, "/streams", "POST", UDP_SPEC, jar, token=False)[0] == 401


def test_the_token_comes_from_the_environment_or_is_generated(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamer.service.http import resolve_token

    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-1234")
    assert resolve_token(HttpSettings()) == ("from-the-environment-1234", False)
    monkeypatch.delenv(TOKEN_ENV)
    token, generated = resolve_token(HttpSettings())
    assert generated and token is not None and len(token) >= 24
    assert resolve_token(HttpSettings(auth="none")) == (None, False)
    with pytest.raises(ConfigError, match="loopback"):
        HttpSettings(host="0.0.0.0", auth="none")


def test_a_generated_token_is_printed_once_by_the_command(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "serve.yaml"
    cfg.write_text(json.dumps({"model": {"device": "cpu"}, "streams": []}))
    port = free_tcp_port()
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    process = subprocess.Popen([sys.executable, "-m", "streamer.cli", "serve", str(cfg),
                                "--port", str(port)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    lines = [line for line in err.splitlines() if "API token" in line]
    assert len(lines) == 1, err
    assert process.returncode == 0


def test_a_cross_site_simple_post_is_refused(api: ApiServer) -> None:
    # what a web page can send without a preflight: text/plain, from its own origin
    simple = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    status, body = request(api, "/streams", "POST", UDP_SPEC, simple)
    assert status == 403 and "cross-site" in body["error"]
    plain = {"Content-Type": "text/plain"}
    assert request(api, "/streams", "POST", UDP_SPEC, plain)[0] == 415
    # a page of another site reading the API (its Origin is sent) is refused too
    assert request(api, "/streams", headers={"Origin": "http://evil.example"})[0] == 403
    own = {"Origin": f"http://127.0.0.1:{api.port}"}
    assert request(api, "/streams", headers=own)[0] == 200
    assert api.service.streams == {}


def test_a_foreign_host_header_is_refused(api: ApiServer) -> None:
    # DNS rebinding: a name the attacker controls pointed at 127.0.0.1
    status, body = request(api, "/streams", headers={"Host": f"evil.example:{api.port}"})
    assert status == 403 and "Host" in body["error"]
    assert request(api, "/streams", headers={"Host": f"localhost:{api.port}"})[0] == 200
    with serving(make({"allowed_hosts": ["cams.example.org"]})) as proxied:
        assert request(proxied, "/streams", headers={"Host": "cams.example.org"})[0] == 200


# -- 2. confinement ---------------------------------------------------------------------------
def post(api: ApiServer, **spec: Any) -> tuple[int, Any]:
    """POST a stream (by default one that waits on a UDP port nothing sends to)."""
    silent = f"udp://127.0.0.1:{free_udp_port()}"
    return request(api, "/streams", "POST", {"id": "x", "model": {"model": "dcp"},
                                             "input": silent, **spec})


def test_files_are_not_written_over_http_without_output_roots(api: ApiServer,
                                                             tmp_path: Path) -> None:
    status, body = post(api, outputs=[{"type": "file", "path": str(tmp_path / "a.mkv")}])
    assert status == 403 and "stream.outputs[0].path" in body["error"]
    status, body = post(api, outputs=[{"type": "hls", "path": str(tmp_path / "hls")}])
    assert status == 403 and "stream.outputs[0].path" in body["error"]
    assert not (tmp_path / "hls").exists()


def test_outputs_stay_inside_the_output_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "recordings", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    (root / "escape").symlink_to(outside)
    (root / "link.mkv").symlink_to(outside / "precious.txt")
    (root / "old.mkv").write_text("an earlier recording")
    with serving(make({"output_roots": [str(root)]})) as api:
        for given in (str(outside / "a.mkv"), str(root / ".." / "elsewhere" / "a.mkv"),
                      "../elsewhere/a.mkv", str(root / "escape" / "a.mkv"),
                      str(root / "link.mkv")):
            status, body = post(api, outputs=[{"type": "file", "path": given}])
            assert status == 403 and "stream.outputs[0].path" in body["error"], (given, body)
        status, body = post(api, outputs=[{"type": "hls", "path": str(outside / "hls")}])
        assert status == 403
        status, body = post(api, outputs=[{"type": "file", "path": str(root / "old.mkv")}])
        assert status == 409 and "overwrite: true" in body["error"]
        status, body = post(api, outputs=[{"type": "file", "path": str(root / "old.mkv"),
                                           "overwrite": True}])
        assert status == 201, body
        assert request(api, "/streams/x", "DELETE")[0] == 200
        status, body = post(api, id="y",  # relative: in the root
                            outputs=[{"type": "file", "path": "new.mkv"}])
        assert status == 201 and body["outputs"] == [str(root / "new.mkv")]
    assert (outside / "precious.txt").read_text() == "keep"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]


def test_url_outputs_take_network_protocols_only_with_a_whitelist(api: ApiServer,
                                                                  tmp_path: Path) -> None:
    target = tmp_path / "written.ts"
    for output in ({"type": "url", "url": f"file:{target}", "format": "mpegts"},
                   {"type": "url", "url": f"udp://127.0.0.1:9?x={target}", "format": "hls"},
                   {"type": "url", "url": "pipe:1", "format": "mpegts"}):
        status, body = post(api, outputs=[output])
        assert status == 403 and "stream.outputs[0]" in body["error"], (output, body)
    assert not target.exists()
    status, _ = post(api, outputs=[{"type": "url", "url": "udp://127.0.0.1:9",
                                    "format": "mpegts"}])
    assert status == 201
    from streamer.service.service import _target

    [spec] = in_process(api).streams["x"].spec.outputs
    made = _target(spec)
    assert isinstance(made, UrlTarget)
    assert made.options["protocol_whitelist"] == "udp"  # what FFmpeg is given


def test_a_stream_posted_in_the_old_spelling_is_added_with_one_warning(
        api: ApiServer, caplog: pytest.LogCaptureFixture) -> None:
    silent = f"udp://127.0.0.1:{free_udp_port()}"
    with caplog.at_level(logging.WARNING, logger="streamer.service.config"):
        status, body = request(api, "/streams", "POST", {
            "id": "old", "source": silent, "model": "dcp", "task": "lowlight",
            "options": {"timeout": "5000000"}})
    assert status == 201 and (body["source"], body["model"], body["task"]) == (
        silent, "dcp", "lowlight")
    [warning] = [r.getMessage() for r in caplog.records if "old config keys" in r.getMessage()]
    assert "stream.options -> stream.source.options" in warning
    assert in_process(api).streams["old"].spec.source.options == {
        "timeout": "5000000", "protocol_whitelist": "udp"}


def test_sources_over_http_are_network_urls_and_cameras_only(api: ApiServer,
                                                            tmp_path: Path) -> None:
    clip = tmp_path / "secret.mp4"
    clip.write_bytes(b"not a video")
    for source in (str(clip), f"file:{clip}", "lavfi:testsrc2,metadata=mode=print:file=/tmp/x",
                   f"lavfi:movie={clip}", "/dev/video0/../../etc/passwd", "concat:a|b"):
        status, body = post(api, input=source)
        assert status == 403 and "stream.input" in body["error"], (source, body)
    status, body = post(api, source={"options": {"protocol_whitelist": "file,udp"}})
    assert status == 403 and "stream.source.options.protocol_whitelist" in body["error"]
    assert post(api)[0] == 201
    assert in_process(api).streams["x"].spec.source.options["protocol_whitelist"] == "udp"


def test_the_operator_allows_lavfi_and_local_sources(tmp_path: Path) -> None:
    with serving(make({"allow_lavfi": True, "allow_local_sources": True})) as api:
        assert post(api, input=LIVE)[0] == 201
        assert post(api, id="y", input=str(tmp_path / "clip.mp4"))[0] == 201


# -- 3. judged before accepted ----------------------------------------------------------------
def test_what_cannot_work_is_refused_naming_the_key(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    root.mkdir()
    bad_weights = tmp_path / "weights.safetensors"
    bad_weights.write_bytes(b"this is no checkpoint")
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    with serving(make({"output_roots": [str(root)]})) as api:
        status, body = post(api, outputs=[{"type": "file",
                                           "path": str(root / "missing" / "a.mkv")}])
        assert status == 400 and "stream.outputs[0].path" in body["error"] \
            and "does not exist" in body["error"]
        status, body = post(api, source={"options": {"timeout": 5}})
        assert status == 400 and "stream.source.options.timeout" in body["error"]
        status, body = post(api, options={"timeout": 5})  # the old spelling, checked as strictly
        assert status == 400 and "stream.options.timeout" in body["error"]
        status, body = post(api, model={"model": "hdm-s", "weights": str(bad_weights)})
        assert status == 400 and "stream.model.weights" in body["error"]
        publish = {"type": "publish", "endpoint": endpoint}
        assert post(api, id="a", outputs=[publish])[0] == 201
        status, body = post(api, id="b", outputs=[publish])
        assert status == 409 and "stream.outputs[0].endpoint" in body["error"] \
            and "'a'" in body["error"]
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            taken = f"tcp://127.0.0.1:{squatter.getsockname()[1]}"
            status, body = post(api, id="c", outputs=[{"type": "publish", "endpoint": taken}])
            assert status == 409 and "in use" in body["error"]
        assert sorted(in_process(api).streams) == ["a"]


@pytest.mark.slow
def test_an_output_that_cannot_open_fails_the_stream_instead_of_retrying(
    tmp_path: Path
) -> None:
    streams: list[dict[str, Any]] = [
        {"id": "rec", "input": LIVE, "model": {"model": "dcp"},
         "outputs": [{"type": "file", "path": str(tmp_path / "missing" / "a.mkv")}]},
        {"id": "ok", "input": LIVE, "model": {"model": "dcp"}}]
    with serving(make(streams=streams)) as api:
        wait_for(lambda: all(request(api, f"/streams/{i}")[1]["state"] != "connecting"
                             for i in ("rec", "ok")))
        status, body = request(api, "/streams/rec")
        assert body["state"] == "failed" and "does not exist" in body["last_error"]
        assert body["reconnects"] == 0
        status, body = request(api, "/readyz")
        assert status == 503 and body["streams"] == {"rec": "failed"}
        assert request(api, "/healthz") == (200, "ok\n")
        assert request(api, "/streams/rec", "DELETE")[0] == 200
        wait_for(lambda: request(api, "/readyz")[0] == 200)


# -- 4. the HTTP server -----------------------------------------------------------------------
def test_a_method_a_path_does_not_take_is_405_with_allow_and_errors_are_json(
    api: ApiServer
) -> None:
    status, body = request(api, "/streams", "PUT", {})
    assert status == 405 and "PUT" in body["error"]
    req = urllib.request.Request(f"http://127.0.0.1:{api.port}/streams", method="PUT",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=10)
    caught.value.close()  # the error is the response: its socket, closed here, not by the GC
    assert set(caught.value.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert caught.value.headers["Content-Type"].startswith("application/json")
    status, body = request(api, "/nothing/here")
    assert status == 404 and "error" in body
    status, body = request(api, "/streams/nope")
    assert status == 404 and "nope" in body["error"]
    status, body = request(api, "/streams", "POST", {"id": "x", "model": {"task": "blur"}})
    assert status == 400 and "stream" in body["error"]


def test_a_bad_content_length_gets_an_http_answer(api: ApiServer) -> None:
    answer = raw(api, b"POST /streams HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n"
                      b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n{}")
    assert answer.split(b"\r\n")[0].split()[1] == b"400"  # an answer, not a dropped line
    big = b"x" * (70 * 1024)
    answer = raw(api, b"POST /streams HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      b"Content-Type: application/json\r\nAuthorization: Bearer "
                      + TOKEN.encode() + b"\r\nContent-Length: " + str(len(big)).encode()
                      + b"\r\n\r\n" + big)
    assert answer.startswith(b"HTTP/1.1 413")


def test_clients_that_hang_up_leave_no_traceback(api: ApiServer,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for path in ("/metrics", "/streams", "/", "/healthz"):
        for _ in range(20):
            raw(api, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), read=False)
            raw(api, f"GET {path} HTTP/1.1\r\nHost: 127".encode(), read=False)
    raw(api, b"POST /streams HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n")
    assert request(api, "/healthz") == (200, "ok\n")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert any(r.name == "streamer.service.access" for r in caplog.records)  # access log


def test_200_clients_at_once_are_all_answered(api: ApiServer) -> None:
    paths = ["/streams", "/metrics", "/healthz", "/readyz", "/"]

    def get(i: int) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{api.port}{paths[i % len(paths)]}",
                                    timeout=20) as response:
            response.read()
            return int(response.status)

    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        statuses = list(pool.map(get, range(400)))
    assert statuses == [200] * 400


# -- 5. metrics and engines -------------------------------------------------------------------
@pytest.mark.slow
def test_latency_is_observed_once_per_frame_per_output_and_engines_are_released(
    tmp_path: Path
) -> None:
    first, second = (f"tcp://127.0.0.1:{free_tcp_port()}" for _ in range(2))
    streams = [{"id": "cam", "input": LIVE, "model": {"model": "dcp"},
                "outputs": [{"type": "publish", "endpoint": first},
                            {"type": "publish", "endpoint": second, "payload": "raw"}]}]
    with serving(make(streams=streams)) as api:
        wait_for(lambda: request(api, "/streams/cam")[1]["frames_out"] > 20)
        request(api, "/streams/cam", "DELETE")  # final counts
        # ... gone, so add it back to read its metrics while it runs
        assert in_process(api).servers == {}  # its engine went with its last stream
        found = samples(api)
        assert not [k for k in found if k[0].startswith(("hdm_stream_engine_",
                                                         "hdm_stream_latency"))]
        api.service.add(api.service.config.streams[0])
        wait_for(lambda: request(api, "/streams/cam")[1]["frames_out"] > 20)
        found = samples(api)
        frames_out = request(api, "/streams/cam")[1]["frames_out"]
        counts = {dict(labels)["output"]: value for (name, labels), value in found.items()
                  if name == "hdm_stream_latency_seconds_count"}
        assert set(counts) == {"0:publish", "1:publish"}
        for value in counts.values():  # once per frame per output, never more
            assert 0 < value <= frames_out + 4
        engine_labels = (("engine", "auto/dcp"), ("weights", "default"))
        assert ("hdm_stream_engine_batch_size_count", engine_labels) in found
