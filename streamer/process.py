"""The process itself: process-wide settings for a frame pipeline on a CPU, applied by the CLI
at start, and how a child process (a segment worker, a serve worker) ended.

Every frame allocates full-size arrays (the float frame, the result, its quantised copy: 11 MB
each at 720p) and frees them a few milliseconds later. glibc serves blocks that large with mmap
and gives them back with munmap at once, so each new frame's memory is fresh pages the kernel
must fault in and zero: at 720p that doubled the reduced path's full-resolution steps (7 ms
instead of 1). Raising glibc's mmap and trim thresholds keeps freed blocks in the heap for the
next frame. The cost: memory freed inside the process is not handed back to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
from multiprocessing.process import BaseProcess

__all__ = ["how_it_ended", "keep_freed_memory"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # bytes: frames up to 8K in float32 stay in the heap


def keep_freed_memory() -> bool:
    """Keep large freed blocks for reuse (glibc only); False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))


def how_it_ended(process: BaseProcess) -> str:
    """Why a child process ended (waited for): its exit code, or the signal that killed it."""
    process.join()
    code = process.exitcode
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"
