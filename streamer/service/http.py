"""The HTTP side of ``serve``: the stream API, Prometheus metrics, health, and the web preview.

    GET    /                        the streams, as a page
    GET    /streams                 the streams with their state and counters (JSON)
    POST   /streams                 add a stream (JSON, as one entry of the config's streams)
    GET    /streams/ID              one stream (JSON)
    DELETE /streams/ID              drain and remove a stream
    GET    /streams/ID/view         the live preview page (input | enhanced, with a slider)
    GET    /streams/ID/preview.jpg  the latest preview picture (header X-Seq: its frame)
    GET    /metrics                 Prometheus text format
    GET    /healthz                 200 while the service serves and its engines (and worker
                                    processes) run
    GET    /readyz                  200 once every stream is up (or ended); 503 naming the
                                    streams connecting, down or failed

An aiohttp server on its own event loop and thread: requests never wait on the pipeline (they
read what it publishes); what blocks (adding a stream builds its engine, removing one drains
it) runs in a worker thread. What it serves is a backend (backend.py): the service in this
process, or the supervisor of worker processes (supervisor.py), the same API either way.
Every error is JSON ``{"error": ...}`` (a method a path does not take: 405 with ``Allow``); a
client that hangs up is not an error; one access log line per request (logger
``streamer.service.access``).

Security (``http`` settings): POST and DELETE need ``Authorization: Bearer TOKEN`` (``auth:
all``: every request, a browser may also carry it as a cookie set by opening ``/?token=TOKEN``);
a request whose ``Host`` is not one of the server's names, or whose ``Origin`` is another site,
is refused (403), and a POST must be ``application/json`` (a cross-site "simple" request cannot
be); a stream added over HTTP is confined (:mod:`streamer.service.guard`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from streamer.errors import ConfigError, StreamExists
from streamer.service.backend import Backend, LocalBackend, NoStream
from streamer.service.config import HttpSettings, stream_spec
from streamer.service.guard import Refused, check_types, confine
from streamer.service.rpc import WorkerError
from streamer.service.service import Service

__all__ = ["TOKEN_ENV", "ApiServer", "resolve_token"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("streamer.service.access")
TOKEN_ENV = "HDM_STREAM_TOKEN"
_MAX_BODY = 64 * 1024
_COOKIE = "hdm_stream_token"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = ("0.0.0.0", "::", "")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page(name: str) -> bytes:
    return resources.files("streamer.service").joinpath("web", name).read_bytes()


def resolve_token(settings: HttpSettings) -> tuple[str | None, bool]:
    """The API token and whether it was generated here (then it is to be shown once): the
    config's, else ``$HDM_STREAM_TOKEN``, else a new random one; None with ``auth: none``."""
    if settings.auth == "none":
        return None, False
    if settings.token:
        return settings.token, False
    from_env = os.environ.get(TOKEN_ENV)
    if from_env:
        if len(from_env) < 16:
            raise ConfigError(f"${TOKEN_ENV} must be at least 16 characters")
        return from_env, False
    return secrets.token_urlsafe(24), True


class _OneLine(logging.Filter):
    """aiohttp's own log of a request it could not parse (a bad Content-Length, a client that
    hung up half-way) as one line at INFO, with no traceback: a client's fault is not ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            record.msg = f"http: {record.getMessage()}: {type(error).__name__} {reason}".strip()
            record.args = ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_server_log = logging.getLogger("aiohttp.server")
if not any(isinstance(f, _OneLine) for f in _server_log.filters):
    _server_log.addFilter(_OneLine())


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class ApiServer:
    """Serves a :class:`Service` (or any :class:`~streamer.service.backend.Backend`: the
    supervisor of worker processes) over HTTP at ``host:port`` (port 0: any free one), with
    its ``http`` settings; ``token``: the token in force (None: ``auth: none``)."""

    def __init__(self, service: Service | Backend, host: str, port: int) -> None:
        self.service = service
        self.backend = LocalBackend(service) if isinstance(service, Service) else service
        self.settings = self.backend.config.http
        self.token, self.token_generated = resolve_token(self.settings)
        self.pages = {"index.html": _page("index.html"), "stream.html": _page("stream.html")}
        self.host = host
        self._hosts = self._allowed_hosts(host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(1024)  # 200 clients at once do not overflow the backlog
        except OSError as error:
            self._socket.close()
            raise ConfigError(f"http: cannot listen on {host}:{port}: {error}") from error
        self._socket.setblocking(False)
        self.port = int(self._socket.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hdm-http",
                                        daemon=True)
        self._runner: web.AppRunner | None = None

    def _allowed_hosts(self, host: str) -> set[str] | None:
        """The names ``Host`` may carry (without port); None: any (a wildcard bind with no
        ``allowed_hosts``: the token guards it)."""
        given = {h.lower() for h in self.settings.allowed_hosts}
        if "*" in given or (host in _WILDCARDS and not given):
            return None
        return {*_LOOPBACK_NAMES, host.lower().strip("[]"), *given}

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._errors, self._guard],
                              client_max_size=_MAX_BODY)
        app.add_routes([
            web.get("/", self._index), web.get("/metrics", self._metrics),
            web.get("/healthz", self._healthz), web.get("/readyz", self._readyz),
            web.get("/streams", self._streams), web.post("/streams", self._add),
            web.get("/streams/{id}", self._stream), web.delete("/streams/{id}", self._remove),
            web.get("/streams/{id}/view", self._view),
            web.get("/streams/{id}/preview.jpg", self._preview),
        ])
        self._runner = web.AppRunner(
            app, handle_signals=False,
            access_log=access_log if self.settings.access_log else None,
            access_log_format='%a "%r" %s %b %Tfs')
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    def stop(self) -> None:
        if self._thread.is_alive():
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
        if not self._thread.is_alive():
            self._loop.close()
        self._socket.close()

    # -- middleware ----------------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Every error as JSON (405 keeps its Allow); never a traceback to the client."""
        try:
            return await handler(request)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            headers = ({"Allow": ", ".join(sorted(error.allowed_methods))}
                       if isinstance(error, web.HTTPMethodNotAllowed) else None)
            message = error.reason
            if message == HTTPStatus(error.status).phrase:  # aiohttp's own: say more
                message = {404: f"no such page: {request.path}",
                           405: f"{request.method} is not allowed on {request.path}",
                           413: f"the body is over {_MAX_BODY} bytes"}.get(error.status,
                                                                            message)
            return _error(error.status, message, headers)
        except NoStream as error:
            return _error(404, str(error))
        except WorkerError as error:  # its worker process is restarting
            return _error(503, str(error))
        except (ConnectionResetError, asyncio.CancelledError):
            raise  # the client hung up: nothing to answer
        except Exception as error:  # logged here, one line to the client
            log.exception("http: %s %s failed", request.method, request.path)
            return _error(500, f"internal error: {type(error).__name__}")

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Host and Origin checked, then the token where ``auth`` needs it."""
        refusal = self._cross_site(request)
        if refusal is not None:
            return _error(403, refusal)
        writes = request.method not in ("GET", "HEAD", "OPTIONS")
        if self.token is not None and (writes or self.settings.auth == "all"):
            given = _bearer(request)
            if given is None and not writes:
                given = request.cookies.get(_COOKIE) or request.query.get("token")
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                return _error(401, "this needs the API token: Authorization: Bearer TOKEN",
                              {"WWW-Authenticate": 'Bearer realm="hdm-stream"'})
        response = await handler(request)
        if not writes and self.token is not None and request.query.get("token") == self.token:
            response.set_cookie(_COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    def _cross_site(self, request: web.Request) -> str | None:
        host = (request.headers.get("Host") or "").lower()
        if self._hosts is not None:
            name = urlsplit(f"//{host}").hostname or ""
            if name not in self._hosts:
                return (f"Host {host!r} is not a name of this server (the operator's "
                        "http.allowed_hosts adds names)")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.settings.allowed_origins and (
                origin == "null" or urlsplit(origin).netloc.lower() != host):
            return (f"cross-site request from {origin!r} refused (the operator's "
                    "http.allowed_origins adds origins)")
        if request.headers.get("Sec-Fetch-Site") == "cross-site" and origin is None:
            return "cross-site request refused"
        return None

    # -- routes --------------------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.Response:
        return _html(self.pages["index.html"])

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await self.backend.metrics()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                                "Cache-Control": "no-store"})

    async def _healthz(self, request: web.Request) -> web.Response:
        problems = await self.backend.problems()
        if problems:
            return _error(503, "; ".join(problems))
        return _text("ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        waiting = await self.backend.waiting()
        if waiting is None:
            return _error(503, "starting")
        if waiting:
            return web.json_response({"error": "streams not up", "streams": waiting},
                                     status=503)
        return _text("ready")

    async def _streams(self, request: web.Request) -> web.Response:
        return _json(await self.backend.streams())

    async def _stream(self, request: web.Request) -> web.Response:
        return _json(await self.backend.stream(request.match_info["id"]))

    async def _view(self, request: web.Request) -> web.Response:
        await self.backend.stream(request.match_info["id"])
        return _html(self.pages["stream.html"])

    async def _preview(self, request: web.Request) -> web.Response:
        snapshot = await self.backend.preview(request.match_info["id"])
        if snapshot is None:
            return _error(404, "no picture yet")
        return web.Response(body=snapshot.jpeg, content_type="image/jpeg",
                            headers={"X-Seq": str(snapshot.seq), "Cache-Control": "no-store"})

    async def _add(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return _error(415, "send the stream as Content-Type: application/json")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as error:
            return _error(400, f"the body is not JSON: {error}")
        try:
            check_types(data)
            spec = confine(stream_spec(data, self.backend.config), self.settings)
            described = await self.backend.add(spec)
        except Refused as error:
            return _error(error.status, str(error))
        except StreamExists as error:
            return _error(409, str(error))
        except ConfigError as error:
            return _error(400, str(error))
        return _json(described, 201)

    async def _remove(self, request: web.Request) -> web.Response:
        stream_id = request.match_info["id"]
        await self.backend.remove(stream_id)
        return _json({"removed": stream_id})


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def _text(body: str) -> web.Response:
    return web.Response(text=body + "\n", content_type="text/plain",
                        headers={"Cache-Control": "no-store"})


def _html(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})
