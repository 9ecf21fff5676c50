"""The HTTP side of ``serve``: the stream API, Prometheus metrics, health, and the web preview.

    GET    /                        the streams, as a page
    GET    /streams                 the streams with their state and counters (JSON)
    POST   /streams                 add a stream (JSON, as one entry of the config's streams)
    GET    /streams/ID              one stream (JSON)
    DELETE /streams/ID              drain and remove a stream
    GET    /streams/ID/view         the live preview page (input | enhanced, with a slider)
    GET    /streams/ID/preview.jpg  the latest preview picture (header X-Seq: its frame)
    GET    /metrics                 Prometheus text format
    GET    /healthz, /readyz        200 when alive / when every configured stream was started

Requests are served on their own threads, read only what the pipeline publishes for them, and
never wait on it; request bodies are capped at 64 KiB.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamer.errors import ConfigError
from streamer.service.config import stream_spec
from streamer.service.metrics import registry_for
from streamer.service.service import Service

__all__ = ["ApiServer"]

log = logging.getLogger(__name__)
_MAX_BODY = 64 * 1024


def _page(name: str) -> bytes:
    return resources.files("streamer.service").joinpath("web", name).read_bytes()


class ApiServer:
    """Serves a :class:`Service` over HTTP at ``host:port`` (port 0: any free one)."""

    def __init__(self, service: Service, host: str, port: int) -> None:
        self.service = service
        self.registry = registry_for(service)
        self.pages = {"index.html": _page("index.html"), "stream.html": _page("stream.html")}
        handler = type("Handler", (_Handler,), {"api": self})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            raise ConfigError(f"http: cannot listen on {host}:{port}: {error}") from error
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="hdm-http",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    api: ApiServer
    server_version = "hdm-stream"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)

    # -- routing -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        parts = self._parts()
        service = self.api.service
        if parts == []:
            self._send(HTTPStatus.OK, self.api.pages["index.html"], "text/html; charset=utf-8")
        elif parts == ["metrics"]:
            self._send(HTTPStatus.OK, generate_latest(self.api.registry), CONTENT_TYPE_LATEST)
        elif parts == ["healthz"]:
            alive = all(s.running for s in service.servers.values())
            self._text(HTTPStatus.OK if alive else HTTPStatus.SERVICE_UNAVAILABLE,
                       "ok" if alive else "an engine has stopped")
        elif parts == ["readyz"]:
            ready = service.ready.is_set()
            self._text(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                       "ready" if ready else "starting")
        elif parts == ["streams"]:
            self._json(HTTPStatus.OK, [s.describe() for s in list(service.streams.values())])
        elif len(parts) >= 2 and parts[0] == "streams":
            self._stream_get(parts[1], parts[2:])
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})

    def do_POST(self) -> None:
        if self._parts() != ["streams"]:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"cannot POST to {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"send a JSON body of 1..{_MAX_BODY} "
                                                         "bytes"})
            return
        try:
            spec = stream_spec(json.loads(self.rfile.read(length)))
            stream = self.api.service.add(spec)
        except (ValueError, ConfigError) as error:  # json's errors are ValueErrors
            status = HTTPStatus.CONFLICT if "already running" in str(error) else \
                HTTPStatus.BAD_REQUEST
            self._json(status, {"error": str(error)})
            return
        self._json(HTTPStatus.CREATED, stream.describe())

    def do_DELETE(self) -> None:
        parts = self._parts()
        if len(parts) != 2 or parts[0] != "streams":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"cannot DELETE {self.path}"})
        elif self.api.service.remove(parts[1]):
            self._json(HTTPStatus.OK, {"removed": parts[1]})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no stream {parts[1]!r}"})

    def _stream_get(self, stream_id: str, rest: list[str]) -> None:
        stream = self.api.service.streams.get(stream_id)
        if stream is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no stream {stream_id!r}"})
        elif rest == []:
            self._json(HTTPStatus.OK, stream.describe())
        elif rest == ["view"]:
            self._send(HTTPStatus.OK, self.api.pages["stream.html"], "text/html; charset=utf-8")
        elif rest == ["preview.jpg"]:
            snapshot = stream.preview.latest
            if snapshot is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no picture yet"})
            else:
                self._send(HTTPStatus.OK, snapshot.jpeg, "image/jpeg",
                           {"X-Seq": str(snapshot.seq)})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})

    # -- replies -------------------------------------------------------------------------------
    def _parts(self) -> list[str]:
        return [unquote(p) for p in urlsplit(self.path).path.split("/") if p]

    def _json(self, status: HTTPStatus, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _text(self, status: HTTPStatus, body: str) -> None:
        self._send(status, body.encode() + b"\n", "text/plain; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
