"""The ``hdm-stream run`` command as the tests call it: in this process, the classical model
(fast), no progress bar."""

from __future__ import annotations

from pathlib import Path

from streamer.cli import main


def run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--model", "dcp", "--quiet"])
