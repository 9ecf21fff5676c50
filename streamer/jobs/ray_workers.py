"""Segments as Ray actors: ``--ray ADDRESS`` joins a running cluster (``ray start --head``
on one machine, ``ray start --address HEAD:6379`` on the others; ``auto`` finds the local
one), ``--ray local`` starts a private one on this machine for the job.

Each actor builds its engine once and takes segment after segment (Ray's ActorPool), with a GPU
of its own where the job runs on CUDA (``num_gpus=1``). Only paths and manifest entries travel
through Ray: the input and the job folder must be on storage every node sees (NFS, a shared
volume) at the same path. Ray comes from the optional extra ``hdm-stream[ray]``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamer.config import RunConfig
from streamer.errors import ConfigError, JobError
from streamer.jobs.files import build_engine
from streamer.jobs.segments import Segment, SegmentResult, enhance_segment
from streamer.jobs.workers import Done

__all__ = ["RayWorkers"]

log = logging.getLogger(__name__)
_LOCAL_OBJECT_STORE = 128 << 20  # bytes: only manifest entries pass through it
_CONNECT_TIMEOUT_S = 5.0


class _SegmentWorker:
    """The actor: one engine, many segments."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.engine = build_engine(config)

    def enhance(self, input: str, segment: Segment, folder: Path) -> SegmentResult:
        return enhance_segment(self.config, self.engine, input, segment, folder)


class RayWorkers:
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
        gpus = self.ray.cluster_resources().get("GPU", 0)
        actor = ray.remote(_SegmentWorker)
        actors = []
        for config in self.configs:
            cuda = config.model.device.startswith("cuda") or (config.model.device == "auto"
                                                              and gpus > 0)
            actors.append(actor.options(num_cpus=1, num_gpus=1 if cuda else 0).remote(config))
        pool = ray.util.ActorPool(actors)
        try:
            for result in pool.map_unordered(
                    lambda a, segment: a.enhance.remote(input, segment, folder), segments):
                done(result)
        except ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None) or error
            raise JobError(f"a Ray worker failed: {str(cause).splitlines()[0]}") from None
        finally:
            for a in actors:
                ray.kill(a)
            if self.address == "local":
                ray.shutdown()


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
