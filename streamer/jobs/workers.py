"""Where segments run: in this process, in N local worker processes (spread over the GPUs
given), or as Ray actors on a cluster (ray_workers.py). Each worker builds its engine once and
enhances segment after segment; what comes back is a manifest entry, never frames: workers
read the input and write segment files on storage they all see.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Protocol

import torch

from hdm.errors import HDMError
from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.errors import JobError, StreamerError
from streamer.jobs.files import build_engine
from streamer.jobs.segments import Segment, SegmentResult, enhance_segment
from streamer.process import how_it_ended

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


def _serve(tasks: Connection, config: RunConfig, threads: int) -> None:
    """A worker process: die with the parent (a resumed job must not race a segment an
    orphan is still writing), leave Ctrl-C to the parent, share the cores, build the engine
    once, then enhance each segment it is sent until it is sent None. A failure goes back as
    the error itself where it is one of ours (one line), else as its traceback."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format=f"hdm-stream[worker {os.getpid()}]: "
                        "%(message)s")
    torch.set_num_threads(threads)
    engine: Engine | JobError
    try:
        engine = build_engine(config)
    except (StreamerError, HDMError, RuntimeError) as error:
        engine = JobError(f"a worker on {config.model.device} cannot start: {error}")
    while (task := tasks.recv()) is not None:
        input, segment, folder = task
        try:
            if isinstance(engine, JobError):
                raise engine
            tasks.send(("done", enhance_segment(config, engine, input, segment, folder), ""))
        except Exception as error:  # noqa: BLE001 - sent to the parent, which raises it
            ours = error if isinstance(error, (StreamerError, HDMError)) else None
            try:
                tasks.send(("failed", ours, traceback.format_exc()))
            except (pickle.PicklingError, TypeError, AttributeError):
                tasks.send(("failed", None, traceback.format_exc()))


@dataclass(eq=False)
class _Process:
    """One worker process, the end of its pipe, and the segment it is enhancing."""

    config: RunConfig
    process: BaseProcess
    tasks: Connection
    segment: Segment | None = None



class ProcessWorkers:
    """N local processes (spawned: CUDA cannot be forked), each with its own engine and
    device, given one segment at a time. A worker that dies (killed, out of memory) costs
    its segment one retry on a new worker; a segment whose worker dies twice ends the job in
    one line, the finished segments kept for ``--resume``."""

    def __init__(self, configs: Sequence[RunConfig]) -> None:
        self.configs = list(configs)

    def run(self, input: str, segments: Sequence[Segment], folder: Path, done: Done) -> None:
        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // len(self.configs))
        todo = deque(segments)
        retried: set[int] = set()
        live: list[_Process] = []

        def start(config: RunConfig) -> _Process:
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, config, threads))
            process.start()
            theirs.close()
            worker = _Process(config, process, ours)
            live.append(worker)
            return worker

        def give(worker: _Process, segment: Segment | None) -> None:
            worker.segment = segment
            # It may have died between segments: the next wait finds it, with this segment.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                worker.tasks.send(None if segment is None else (input, segment, folder))

        try:
            for config in self.configs[:len(todo)]:
                give(start(config), todo.popleft())
            while busy := [w for w in live if w.segment is not None]:
                wait([w.tasks for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    segment = worker.segment
                    assert segment is not None
                    try:
                        message = worker.tasks.recv() if worker.tasks.poll() else None
                    except (EOFError, ConnectionResetError):  # its end closed: it died
                        message = None
                    if message is None and worker.process.is_alive():
                        continue
                    if message is None:  # died during the segment
                        live.remove(worker)
                        self._died(worker, segment, retried, folder)
                        give(start(worker.config), segment)
                        continue
                    state, result, trace = message
                    if state == "failed":
                        if result is None:
                            raise RuntimeError(f"segment {segment.index} failed in worker "
                                               f"{worker.process.pid}:\n{trace}")
                        raise result
                    done(result)
                    give(worker, todo.popleft() if todo else None)
        except BaseException:
            for worker in live:
                worker.process.terminate()  # a segment in progress is redone on --resume
            for worker in live:
                worker.process.join(5)
            for part in folder.glob("*.part.mp4"):
                part.unlink(missing_ok=True)
            raise
        for worker in live:
            worker.process.join()
            worker.tasks.close()

    @staticmethod
    def _died(worker: _Process, segment: Segment, retried: set[int], folder: Path) -> None:
        """Say why; a segment's first loss is retried (its ``.part`` removed), a second ends
        the job."""
        why = how_it_ended(worker.process)
        worker.tasks.close()
        segment.file(folder).with_suffix(".part.mp4").unlink(missing_ok=True)
        if segment.index in retried:
            raise JobError(
                f"segment {segment.index}: its worker process died again ({why}; out of "
                "memory?), after a retry on a new worker; the finished segments are kept: the "
                "same command with --resume continues")
        retried.add(segment.index)
        log.warning("segment %d: worker process %d died (%s); retrying the segment once on a "
                    "new worker", segment.index, worker.process.pid, why)
