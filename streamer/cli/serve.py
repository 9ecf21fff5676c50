"""``hdm-stream serve CONFIG``: start the service and its HTTP API, run until SIGTERM or
Ctrl-C, then drain every stream and exit 0 (a service asked to stop has done its job). With
``workers`` > 1 (or ``auto`` deciding so) the streams run in worker processes under a
supervisor that owns the API; with 1, in this process."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading

from streamer.service.backend import Backend, LocalBackend
from streamer.service.config import ServeConfig, load_serve_config
from streamer.service.http import TOKEN_ENV, ApiServer
from streamer.service.placement import resolve_workers
from streamer.service.service import Service
from streamer.service.supervisor import Supervisor

__all__ = ["add_parser", "command", "serve"]

log = logging.getLogger("hdm-stream")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run many streams with an HTTP API, metrics and preview")
    p.add_argument("config", help="YAML: http and streams (see configs/serve.yaml)")
    p.add_argument("--port", type=int, help="HTTP port (overrides http.port)")


def command(args: argparse.Namespace) -> int:
    config = load_serve_config(args.config)
    if args.port is not None:
        config = dataclasses.replace(config, http=dataclasses.replace(config.http,
                                                                      port=args.port))
    return serve(config)


def serve(config: ServeConfig, *, ready: threading.Event | None = None) -> int:
    """Run until a signal; ``ready`` is set once the API listens (tests)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    workers = resolve_workers(config)
    backend: Backend = (LocalBackend(Service(config)) if workers == 1
                        else Supervisor(config, workers))
    api = ApiServer(backend, config.http.host, config.http.port)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        api.start()
        where = "" if workers == 1 else f" in {workers} worker processes"
        log.info("serving %d streams%s; API, metrics and preview on http://%s:%d/",
                 len(config.streams), where, config.http.host, api.port)
        if api.token_generated:  # shown once: the operator copies it
            log.warning("API token (generated; set http.token or $%s to choose one): %s",
                        TOKEN_ENV, api.token)
        elif api.token is None:
            log.warning("http.auth is none: anyone on this host can add and remove streams")
        if ready is not None:
            ready.set()
        backend.start()
        while not stop.wait(0.5):
            pass
        log.info("stopping: draining every stream")
    finally:
        backend.drain()  # also when a start failed: the streams and workers started end
        api.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for stream in backend.summary():
        log.info("%s: %s, %d frames in, %d out", stream["id"], stream["state"],
                 stream["frames_in"], stream["frames_out"])
    return 0
