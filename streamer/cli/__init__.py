"""The ``hdm-stream`` command line, a module per command (see main.py)."""

from streamer.cli.main import main

__all__ = ["main"]
