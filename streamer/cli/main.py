"""The ``hdm-stream`` command line: the parser, the logging, and the dispatch to a command
(run.py, serve.py, subscribe.py, train.py).

Every error a user can cause ends as one line on stderr and a non-zero exit code; ``--debug``
shows the traceback too.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence

import av
import torch

from hdm.errors import HDMError
from streamer.cli import run, serve, subscribe, train
from streamer.cli.common import JsonLines
from streamer.errors import StreamerError
from streamer.process import keep_freed_memory

__all__ = ["build_parser", "main"]

log = logging.getLogger("hdm-stream")
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": run.run, "serve": serve.command, "subscribe": subscribe.subscribe,
    "train": train.train, "eval": train.evaluate,
}


def _version() -> str:
    """hdm-stream's version with the libraries that decide what it can do."""
    from importlib.metadata import version

    return (f"hdm-stream {version('hdm-stream')} (torch {torch.__version__}, PyAV "
            f"{av.__version__}, FFmpeg libavformat "
            f"{'.'.join(map(str, av.library_versions['libavformat']))})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hdm-stream", description="Real-time video "
                                     "dehazing, deraining and low-light enhancement with HDM.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--log-format", choices=("plain", "json"), default="plain",
                        help="log lines as text or as JSON objects (one per line)")
    sub = parser.add_subparsers(dest="command", required=True)
    run.add_parser(sub)
    serve.add_parser(sub)
    subscribe.add_parser(sub)
    train.add_train_parser(sub)
    train.add_eval_parser(sub)
    return parser


def _deaf_teardown() -> None:
    """Once the command has returned there is nothing left to stop, yet the interpreter's
    teardown takes about half a second with torch loaded: a second Ctrl-C or SIGTERM landing
    there (a stopped segmented job ends in milliseconds, so a user's second press does) would
    kill the process by that signal instead of the exit code the run chose (130/143 after a
    stop). Run at exit, so a caller of :func:`main` in its own process keeps its handlers."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    atexit.unregister(_deaf_teardown)  # once, however often main is called
    atexit.register(_deaf_teardown)
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if args.log_format == "json"
                         else logging.Formatter("hdm-stream: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("torch", "libav", "onnxscript", "onnx_ir"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    keep_freed_memory()
    try:
        return COMMANDS[args.command](args)
    except (StreamerError, HDMError) as error:
        if args.debug:
            log.exception("failed")
        _final(args, "error", str(error), kind=type(error).__name__)
        return 2
    except KeyboardInterrupt:
        _final(args, "warning", "interrupted")
        return 130


def _final(args: argparse.Namespace, level: str, message: str, **more: str) -> None:
    """The run's last line on stderr: plain, or under ``--log-format json`` one more JSON
    object like the log's (a collector reads the failure as it reads the rest)."""
    if args.log_format == "json":
        entry = {"time": round(time.time(), 3), "level": level, "logger": "hdm-stream",
                 "message": message, **more}
        print(json.dumps(entry), file=sys.stderr)
    else:
        print(f"hdm-stream: {'error: ' if level == 'error' else ''}{message}", file=sys.stderr)

