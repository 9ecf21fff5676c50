"""Errors raised by the hdm package.

Every error a user can cause derives from :class:`HDMError`, so a caller (the CLI, a pipeline)
can catch one type and print one line::

    HDMError
    ├── InputError (also ValueError)        bad image tensor: dtype, shape, channels, NaN, empty
    ├── ModelConfigError (also ValueError)  unknown preset, task or option
    └── CheckpointError                     missing, unreadable or foreign checkpoint file
        └── PresetMismatchError             weights built for another preset
"""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "HDMError", "InputError", "ModelConfigError",
           "PresetMismatchError"]


class HDMError(Exception):
    """Root of all errors raised by :mod:`hdm`."""


class InputError(HDMError, ValueError):
    """An image batch the model cannot take; the message says what was expected."""


class ModelConfigError(HDMError, ValueError):
    """An unknown preset, task or option (named apart from streamer's ConfigError: a module
    that imported both had one name shadow the other)."""


ConfigError = ModelConfigError  # the earlier name, kept for callers of hdm.ConfigError


class CheckpointError(HDMError):
    """A checkpoint that is missing, corrupt, or not in a format we read."""


class PresetMismatchError(CheckpointError):
    """A checkpoint whose shapes belong to a different preset than the one asked for."""
