"""Errors raised by the streamer package; the CLI prints each as one line and exits non-zero.

    StreamerError
    ├── ConfigError (also ValueError)     bad YAML key or value, bad flag combination
    │   └── StreamExists                  serve: a stream of that id is already running
    ├── FrameError (also ValueError)      a frame given to the Python API that is not H×W×3
    ├── MessageError (also ValueError)    a ZeroMQ message that does not follow the wire format
    ├── SourceError                       input cannot be opened or decoded
    │   └── SourceEndedError              a live source gave up after its reconnect budget
    ├── SinkError                         output file or endpoint cannot be written
    │   └── OutputIncompleteError         a file output read back is empty or partial
    ├── EngineError                       model or backend cannot run
    ├── JobError                          a segmented job's workers or join failed
    └── RunErrors                         several of the above in one run (``errors``)

    KeyboardInterrupt
    └── StoppedAtOnce                     a second Ctrl-C or SIGTERM while a run drained
"""

from __future__ import annotations

__all__ = ["ConfigError", "EngineError", "FrameError", "JobError", "MessageError",
           "OutputIncompleteError", "RunErrors", "SinkError", "SourceEndedError", "SourceError",
           "StoppedAtOnce", "StreamExists", "StreamerError"]


class StreamerError(Exception):
    """Root of all errors raised by :mod:`streamer`."""


class ConfigError(StreamerError, ValueError):
    """A configuration key or value that is not accepted; the message names the key path."""


class StreamExists(ConfigError):
    """A stream added under an id that a running stream holds (serve answers 409 Conflict)."""


class FrameError(StreamerError, ValueError):
    """A frame given to :class:`streamer.Enhancer` that is not H×W×3 uint8/uint16 RGB."""


class MessageError(StreamerError, ValueError):
    """A ZeroMQ message that does not follow streamer/publish/wire.py's wire format."""


class SourceError(StreamerError):
    """An input that cannot be opened, read or decoded."""


class SourceEndedError(SourceError):
    """A live source that stayed unreachable through every reconnect attempt."""


class SinkError(StreamerError):
    """An output file or endpoint that cannot be written."""


class OutputIncompleteError(SinkError):
    """A file output that, read back after it was closed, lacks video packets the run wrote
    or its trailer. ``stats``: the run's summary, where the run got that far (the CLI prints
    it before the error)."""

    stats: object | None = None


class EngineError(StreamerError):
    """A model or backend that cannot run on the chosen device."""


class JobError(StreamerError):
    """A segmented job that cannot go on: a worker died, the Ray cluster is out of reach, or
    the joined segments do not add up to the input (the finished segments are kept)."""


class StoppedAtOnce(KeyboardInterrupt):
    """A run interrupted again while it drained: it stopped at once, its outputs closed with
    what they had (files with their trailer); the message says what each holds. An interrupt
    still, so whatever stops on Ctrl-C stops on it too."""


class RunErrors(StreamerError):
    """Several stages failed in one run; ``errors`` holds each (the message lists them)."""

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__("; ".join(f"{error}" for error in errors))
        self.errors = errors
