"""Segments as Ray actors: ``--ray ADDRESS`` joins a running cluster (``ray start --head``
on one machine, ``ray start --address HEAD:6379`` on the others; ``auto`` finds the local
one), ``--ray local`` starts a private one on this machine for the job.

Each actor builds its engine once and is given segment after segment, one at a time (by hand,
not Ray's ActorPool: a dead actor's segment must be known to be retried), with a GPU of its
own where the job runs on CUDA (``num_gpus=1``). Only paths and manifest entries travel
through Ray: the input and the job folder must be on storage every node sees (NFS, a shared
volume) at the same path. Ray comes from the optional extra ``hdm-stream[ray]``.
"""

from __future__ import annotations

import logging
import re
import socket
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hdm.errors import HDMError
from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.errors import ConfigError, JobError, StreamerError
from streamer.jobs.files import build_engine
from streamer.jobs.segments import Segment, SegmentResult, enhance_segment
from streamer.jobs.workers import Done

__all__ = ["RayWorkers"]

log = logging.getLogger(__name__)
_LOCAL_OBJECT_STORE = 128 << 20  # bytes: only manifest entries pass through it
_CONNECT_TIMEOUT_S = 5.0


class _SegmentWorker:
    """The actor: one engine, many segments. An engine that cannot be built is raised by
    each task (one line in the driver), not by the actor's creation (which Ray reports as
    a death)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.engine: Engine | JobError
        try:
            self.engine = build_engine(config)
        except (StreamerError, HDMError, RuntimeError) as error:
            self.engine = JobError(f"a Ray worker on {config.model.device} cannot start: "
                                   f"{error}")

    def enhance(self, input: str, segment: Segment, folder: Path) -> SegmentResult:
        if isinstance(self.engine, JobError):
            raise self.engine
        return enhance_segment(self.config, self.engine, input, segment, folder)


class RayWorkers:
    """Ray actors given one segment at a time. An actor that dies (its process killed, its
    node lost) costs its segment one retry on a new actor; a segment whose actor dies twice
    ends the job in one line, the finished segments kept for ``--resume``."""

    def __init__(self, address: str, configs: Sequence[RunConfig]) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--ray needs Ray: pip install 'hdm-stream[ray]'") from None
        _check_reachable(address)
        self.ray: Any = ray
        self.address = address
        self.configs = list(configs)

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        try:
            if self.address == "local":
                ray.init(num_cpus=len(self.configs), include_dashboard=False,
                         object_store_memory=_LOCAL_OBJECT_STORE, log_to_driver=True)
            else:
                ray.init(address=self.address, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise JobError(f"cannot reach the Ray cluster at {self.address}: "
                           f"{str(error).splitlines()[0]}") from error

    def run(self, input: str, segments: Sequence[Segment], folder: Path, done: Done) -> None:
        ray = self.ray
        self._connect()
        gpus = ray.cluster_resources().get("GPU", 0)
        actor = ray.remote(_SegmentWorker)
        actors: list[Any] = []
        running: dict[Any, tuple[Any, RunConfig, Segment]] = {}  # task -> actor, its config
        todo = deque(segments)
        retried: set[int] = set()

        def give(worker: Any, config: RunConfig, segment: Segment) -> None:
            running[worker.enhance.remote(input, segment, folder)] = worker, config, segment

        def start(config: RunConfig) -> Any:
            cuda = config.model.device.startswith("cuda") or (config.model.device == "auto"
                                                              and gpus > 0)
            actors.append(actor.options(num_cpus=1, num_gpus=1 if cuda else 0).remote(config))
            return actors[-1]

        try:
            for config in self.configs[:len(todo)]:
                give(start(config), config, todo.popleft())
            while running:
                [task], _ = ray.wait(list(running), num_returns=1)
                worker, config, segment = running.pop(task)
                try:
                    result = ray.get(task)
                except ray.exceptions.ActorDiedError as error:
                    if error.actor_init_failed:  # not ours (those come from enhance): a node
                        last = str(error).strip().splitlines()[-1]  # without hdm-stream?
                        raise JobError(f"a Ray worker cannot start: {last}") from None
                    _died(error, segment, retried, folder)
                    give(start(config), config, segment)
                    continue
                except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as error:
                    # an error of the segment's, or an actor out of reach that may still be
                    # writing its segment: not retried beside it
                    cause = getattr(error, "cause", None) or error
                    raise JobError(f"a Ray worker failed: {str(cause).splitlines()[0]}"
                                   ) from None
                done(result)
                if todo:
                    give(worker, config, todo.popleft())
        finally:
            for a in actors:
                ray.kill(a)
            if self.address == "local":
                ray.shutdown()


def _died(error: Exception, segment: Segment, retried: set[int], folder: Path) -> None:
    """Say which actor died and how (Ray's message names its pid, node and exit); a segment's
    first loss is retried (its ``.part`` removed), a second ends the job."""
    text = str(error)
    said = []
    if pid := re.search(r"^\s*pid: (\d+)", text, re.MULTILINE):
        ip = re.search(r"^\s*ip: (\S+)", text, re.MULTILINE)
        said.append(f"pid {pid[1]}" + (f" on {ip[1]}" if ip else ""))
    if detail := re.search(r"Worker exit detail: ([^.]+)", text):
        said.append(detail[1])
    why = ": ".join(said) or text.splitlines()[0]
    segment.file(folder).with_suffix(".part.mp4").unlink(missing_ok=True)
    if segment.index in retried:
        raise JobError(f"segment {segment.index}: its Ray worker died again ({why}; out of "
                       "memory?), after a retry on a new worker; the finished segments are "
                       "kept: the same command with --resume continues")
    retried.add(segment.index)
    log.warning("segment %d: its Ray worker died (%s); retrying the segment once on a new "
                "worker", segment.index, why)


def _check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that accepts no connection is one clear line at once:
    Ray itself retries an unreachable head for minutes. ``local`` and ``auto`` need no check
    (``auto`` fails fast when no cluster runs here)."""
    if address in ("local", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray takes local, auto, HOST:PORT or ray://HOST:PORT; got "
                          f"{address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise JobError(f"cannot reach the Ray cluster at {address}: "
                       f"{error.strerror or error}") from None
