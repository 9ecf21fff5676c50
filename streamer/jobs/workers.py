"""Where segments run: in this process, in N local worker processes (spread over the GPUs
given), or as Ray actors on a cluster (ray_workers.py). Each worker builds its engine once and
enhances segment after segment; what comes back is a manifest entry, never frames: workers
read the input and write segment files on storage they all see.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

import torch

from hdm.errors import HDMError
from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.errors import StreamerError
from streamer.jobs.files import build_engine
from streamer.jobs.segments import Segment, SegmentResult, enhance_segment

__all__ = ["InlineWorkers", "ProcessWorkers", "Workers", "worker_configs"]

log = logging.getLogger(__name__)
Done = Callable[[SegmentResult], None]


class Workers(Protocol):
    def run(self, input: str, segments: Sequence[Segment], folder: Path, done: Done) -> None:
        """Enhance every segment, calling ``done`` (in this thread) as each finishes; the
        first failure is raised once the others are stopped."""


def worker_configs(config: RunConfig, count: int, devices: Sequence[str]) -> list[RunConfig]:
    """One config per worker, the devices dealt round-robin (``cuda:0,cuda:1``)."""
    if not devices:
        return [config] * count
    return [config.with_overrides(model={"device": devices[i % len(devices)]})
            for i in range(count)]


class InlineWorkers:
    """Segments one after another through one engine in this process."""

    def __init__(self, config: RunConfig, engine: Engine) -> None:
        self.config, self.engine = config, engine

    def run(self, input: str, segments: Sequence[Segment], folder: Path, done: Done) -> None:
        for segment in segments:
            done(enhance_segment(self.config, self.engine, input, segment, folder))


# In a worker process: its config and engine, or why it could not build them (raised by each
# task, so the parent reports it in one line instead of a broken pool).
_worker: tuple[RunConfig, Engine] | StreamerError | None = None


def _start_worker(configs: multiprocessing.Queue[RunConfig], threads: int) -> None:
    """A worker process: die with the parent (a resumed job must not race a segment an
    orphan is still writing), leave Ctrl-C to the parent, share the cores, build the engine."""
    global _worker
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format=f"hdm-stream[worker {os.getpid()}]: "
                        "%(message)s")
    torch.set_num_threads(threads)
    config = configs.get()
    try:
        _worker = (config, build_engine(config))
    except (StreamerError, HDMError, RuntimeError) as error:
        _worker = StreamerError(f"a worker on {config.model.device} cannot start: {error}")


def _enhance(input: str, segment: Segment, folder: Path) -> SegmentResult:
    assert _worker is not None, "not a worker process"
    if isinstance(_worker, StreamerError):
        raise _worker
    config, engine = _worker
    return enhance_segment(config, engine, input, segment, folder)


class ProcessWorkers:
    """N local processes (spawned: CUDA cannot be forked), each with its own engine and
    device, taking segments from one queue."""

    def __init__(self, configs: Sequence[RunConfig]) -> None:
        self.configs = list(configs)

    def run(self, input: str, segments: Sequence[Segment], folder: Path, done: Done) -> None:
        context = multiprocessing.get_context("spawn")
        handout: multiprocessing.Queue[RunConfig] = context.Queue()
        for config in self.configs:
            handout.put(config)
        threads = max(1, (os.cpu_count() or 1) // len(self.configs))
        pool = ProcessPoolExecutor(len(self.configs), mp_context=context,
                                   initializer=_start_worker, initargs=(handout, threads))
        try:
            pending: set[Future[SegmentResult]] = {
                pool.submit(_enhance, input, segment, folder) for segment in segments}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        result = future.result()  # raises the first failure
                    except BrokenProcessPool:
                        raise StreamerError(
                            "a worker process died during a segment (killed, or out of "
                            "memory?); the finished segments are kept: the same command with "
                            "--resume continues") from None
                    done(result)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            children = multiprocessing.active_children()
            for child in children:
                child.terminate()  # a segment in progress is redone on --resume
            for child in children:
                child.join(5)
            for part in folder.glob("*.part.mp4"):
                part.unlink(missing_ok=True)
            raise
        pool.shutdown()
