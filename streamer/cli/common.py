"""What the commands share: SIGTERM as Ctrl-C, the shells' exit codes for a stop, and JSON
log lines."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from collections.abc import Iterator

__all__ = ["JsonLines", "interrupted_code", "sigterm_as_interrupt"]


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
