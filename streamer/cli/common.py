"""What the commands share: SIGTERM as Ctrl-C, the shells' exit codes for a stop, JSON log
lines, and the files and folders a flag names (an OSError there is a one-line SinkError)."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

from streamer.errors import SinkError

__all__ = ["JsonLines", "interrupted_code", "make_folder", "sigterm_as_interrupt", "write_json"]


@contextlib.contextmanager
def sigterm_as_interrupt(terminated: list[int]) -> Iterator[None]:
    """SIGTERM (systemd, containers) drains exactly like Ctrl-C: the run finishes what it
    read; the signal is noted for the exit code."""
    def on_sigterm(signum: int, _frame: object) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_code(terminated: list[int]) -> int:
    return 128 + (terminated[0] if terminated else signal.SIGINT)  # the shells' convention


class JsonLines(logging.Formatter):
    """One JSON object per log line, for log collectors: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": round(record.created, 3), "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def write_json(path: Path, data: object) -> None:
    """``data`` as indented JSON at ``path`` (``--summary-json``)."""
    try:
        path.write_text(json.dumps(data, indent=2))
    except OSError as error:
        raise SinkError(f"cannot write {path}: {error.strerror or error}") from None


def make_folder(path: Path) -> None:
    """``path`` and its parents made where missing (``--save``, ``--out``)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SinkError(f"cannot make the folder {path}: {error.strerror or error}") from None
