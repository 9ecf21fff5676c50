"""``hdm-stream serve CONFIG``: start the service and its HTTP API, run until SIGTERM or
Ctrl-C, then drain every stream and exit 0 (a service asked to stop has done its job)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading

from streamer.service.config import ServeConfig, load_serve_config
from streamer.service.http import TOKEN_ENV, ApiServer
from streamer.service.service import Service

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

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    service = Service(config)
    api = ApiServer(service, config.http.host, config.http.port)
    try:
        api.start()
        log.info("serving %d streams; API, metrics and preview on http://%s:%d/",
                 len(config.streams), config.http.host, api.port)
        if api.token_generated:  # shown once: the operator copies it
            log.warning("API token (generated; set http.token or $%s to choose one): %s",
                        TOKEN_ENV, api.token)
        elif api.token is None:
            log.warning("http.auth is none: anyone on this host can add and remove streams")
        if ready is not None:
            ready.set()
        service.start()
        while not stop.wait(0.5):
            pass
        log.info("stopping: draining every stream")
        service.drain()
    finally:
        api.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for stream in service.all_streams():
        totals = stream.counts().totals
        log.info("%s: %s, %d frames in, %d out", stream.spec.id, stream.state.value,
                 totals["frames_in"], totals["frames_out"])
    return 0
