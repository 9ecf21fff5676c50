"""Which worker process runs which stream when ``serve`` shards its streams (``workers`` > 1).

Two wishes pull apart: streams that share an engine key (model, task, weights) batch together
only inside one process, and the point of several processes is to spread the streams over the
cores. So a key's streams stay together up to a worker's fair share (the streams over the
workers, rounded up) and are split only beyond it: four streams of one key on two workers run
two and two, each pair batching.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from streamer.service.config import EngineKey, ServeConfig, StreamSpec

__all__ = ["Load", "choose", "plan", "resolve_workers"]


def resolve_workers(config: ServeConfig, cores: int | None = None,
                    gpu: bool | None = None) -> int:
    """The number of worker processes ``config`` asks for; 1 is the in-process service.

    ``auto``: one per core, no more than the configured streams (at least one); one on a GPU,
    where one engine batches every stream and each process would hold its own CUDA context and
    weights. Measured on 2 shared cores (benchmarks/bench_streams.py --workers, the README's
    table): 4 live 360p hdm-s streams, 31 frames a second per core used with 2 workers against
    24 in one process and 21 from 4 separate processes (one interpreter runs the per-frame
    Python work of all its streams on one core at a time); 2 workers held 1.6x the memory of
    one process, 0.48x that of 4 processes. More workers than cores split the cores further."""
    if config.workers != "auto":
        return int(config.workers)
    if gpu is None:
        gpu = _on_gpu(config.model.device)
    if gpu:
        return 1
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, min(cores, len(config.streams)))


def _on_gpu(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    return device == "auto" and bool(torch.cuda.is_available())


def plan(specs: Sequence[StreamSpec], workers: int) -> list[list[StreamSpec]]:
    """The configured streams dealt to ``workers`` processes: the largest engine key first,
    each into the least-loaded worker up to the fair share, the rest into the next."""
    fair = math.ceil(len(specs) / workers) if specs else 0
    groups: dict[EngineKey, list[StreamSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.engine_key, []).append(spec)
    dealt: list[list[StreamSpec]] = [[] for _ in range(workers)]
    for group in sorted(groups.values(), key=len, reverse=True):
        rest = list(group)
        while rest:
            target = min(range(workers), key=lambda w: (len(dealt[w]), w))
            room = fair - len(dealt[target])
            dealt[target].extend(rest[:room])
            rest = rest[room:]
    return dealt


@dataclass(frozen=True)
class Load:
    """What placement knows of a worker: whether it runs now, how many streams it carries
    (those not ended, failed or stopped) and their engine keys."""

    index: int
    running: bool
    streams: int
    keys: frozenset[EngineKey]


def choose(key: EngineKey, loads: Sequence[Load]) -> int | None:
    """The worker for a stream added at run time: a running worker that already has its
    engine and is under the fair share (the least loaded of them), else the least-loaded
    running worker; None when none runs."""
    running = [load for load in loads if load.running]
    if not running:
        return None
    fair = math.ceil((sum(load.streams for load in loads) + 1) / len(loads))
    sharing = [load for load in running if key in load.keys and load.streams < fair]
    return min(sharing or running, key=lambda load: (load.streams, load.index)).index
