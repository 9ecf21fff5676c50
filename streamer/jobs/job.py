"""A long file as a segmented job: plan the segments, continue a manifest (``--resume``), run
what is left on the chosen workers, join, check, clean up.

The job's folder ``OUT.hdm-job/`` beside the output holds the manifest and the finished
segments until the join has written the output and found every frame in it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.engine.scene import SceneEngine
from streamer.engine.settings import TASKS, parse_inference_size, size_for
from streamer.errors import ConfigError, JobError
from streamer.frames import StreamInfo
from streamer.jobs.files import decoded_as_configured
from streamer.jobs.join import join_segments
from streamer.jobs.lock import JobLock
from streamer.jobs.manifest import Manifest, check_folder, input_fingerprint, settings_fingerprint
from streamer.jobs.segments import (
    PREROLL_FRAMES,
    SegmentPlan,
    SegmentResult,
    job_folder,
    plan_segments,
)
from streamer.jobs.workers import InlineWorkers, ProcessWorkers, Workers, worker_configs
from streamer.queues import Stopping
from streamer.sinks.build import build_sinks
from streamer.sinks.file import FileTarget
from streamer.stats import RunStats

__all__ = ["JobSettings", "job_folder", "run_job"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSettings:
    """``segment_s``: segment length (cut at the next keyframe); ``preroll``: frames decoded
    and enhanced before each segment but not written; ``workers``: local processes (1: this
    one); ``devices``: dealt to the workers; ``ray``: a Ray address (or ``local``) instead of
    local processes; ``resume``: continue the job's manifest if it matches."""

    segment_s: float = 30.0
    preroll: int = PREROLL_FRAMES
    workers: int = 1
    devices: tuple[str, ...] = ()
    ray: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        if self.segment_s <= 0:
            raise ConfigError(f"--segment-seconds must be > 0, got {self.segment_s:g}")
        if self.preroll < 0:
            raise ConfigError(f"--preroll must be >= 0 frames, got {self.preroll}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")


def _settings(config: RunConfig, job: JobSettings) -> dict[str, object]:
    """What decides the pixels and the encode (not where or how fast they are made)."""
    model = dataclasses.asdict(config.model)
    model.pop("device")
    return {"version": version("hdm-stream"), "model": model,
            "smoothing": dataclasses.asdict(config.smoothing),
            "stabiliser": dataclasses.asdict(config.stabiliser),
            "encode": dataclasses.asdict(config.encode),
            "source": {"options": config.source.options, "tone_map": config.source.tone_map,
                       "deinterlace": config.source.deinterlace},
            "segment_s": job.segment_s, "preroll": job.preroll}


def _workers(config: RunConfig, job: JobSettings, engine: Callable[[], Engine]) -> Workers:
    configs = worker_configs(config, job.workers, job.devices)
    if job.ray is not None:
        from streamer.jobs.ray_workers import RayWorkers

        return RayWorkers(job.ray, configs)
    if job.workers > 1:
        return ProcessWorkers(configs)
    return InlineWorkers(configs[0], engine())


def _pin_inference_size(config: RunConfig, info: StreamInfo, engine: Callable[[], Engine]
                        ) -> RunConfig:
    """``auto`` decided once, here, for the input's size and rate, for each task the engine
    runs (``--task auto`` runs three, each with its own size): every worker, on any machine,
    then runs the networks at the same sizes (segments that differ would show at the joins),
    and the manifest records them (a resume on a machine that would choose otherwise is
    refused rather than mixed). Full resolution is pinned as the frame's own shorter side, not
    ``full``: that runs the same network on the same path as ``auto`` did here (``full`` takes
    RGB where ``auto`` takes I420 planes, and other weights for dehazing), so the segments
    enhanced in this process and by workers are the same frames."""
    tasks = TASKS if config.model.task == "auto" else (config.model.task,)
    sizes_given = [size_for(config.model.inference_size, task) for task in tasks]
    if "auto" not in sizes_given or not (info.width and info.height):
        return config
    built = engine()
    engines = built.engines if isinstance(built, SceneEngine) else {built.settings.task: built}
    rate = float(info.rate) if info.rate else None
    sizes: dict[str, int | str] = {}
    for task, one in engines.items():
        one.runner.batch_size = config.batch.size
        side = one.runner.short_side(info.height, info.width, rate)
        sizes[task] = min(info.height, info.width) if side is None else side
    task = built.settings.task
    pinned = parse_inference_size(sizes) if isinstance(built, SceneEngine) else sizes[task]
    model = dataclasses.replace(config.model, inference_size=pinned)
    return dataclasses.replace(config, model=model)


def _check_output(config: RunConfig, input: str, output: Path) -> StreamInfo:
    """Open the output as the join will (codec, pixel format, options, the streams to copy)
    and close it unwritten: what it refuses (AAC into WebM, an 8-bit HDR output) is refused
    now, not after every segment has been enhanced. Returns what the input is."""
    source = decoded_as_configured(config, input)
    try:
        [sink] = build_sinks([FileTarget(output)], config.encode, live=False,
                             stopping=Stopping())
        try:
            info = source.open()
            sink.open(info)
        finally:
            sink.close()
    finally:
        source.close()
    return info


def run_job(config: RunConfig, input: str, output: Path, job: JobSettings,
            engine: Callable[[], Engine]) -> RunStats:
    """Enhance ``input`` into ``output`` in segments; ``engine`` builds (or returns) the
    engine of this process, asked for only when segments run here."""
    source = Path(input)
    if not source.is_file():
        raise ConfigError(f"segments need an input file; not found: {input}")
    plan = plan_segments(input, job.segment_s, job.preroll)
    info = _check_output(config, input, output)
    config = _pin_inference_size(config, info, engine)
    workers = _workers(config, job, engine)  # before the job folder: a bad address leaves none
    folder = job_folder(output)
    check_folder(folder)  # someone else's folder of that name is not locked either
    with JobLock(folder):  # one run per job: a second is refused while this one lives
        return _run_locked(config, input, output, job, workers, plan, folder)


def _run_locked(config: RunConfig, input: str, output: Path, job: JobSettings,
                workers: Workers, plan: SegmentPlan, folder: Path) -> RunStats:
    stats = RunStats()
    manifest = Manifest.start(folder, input_fingerprint(Path(input), plan.fingerprint),
                              settings_fingerprint(_settings(config, job)), resume=job.resume)
    todo = [s for s in plan.segments if not manifest.done(s)]
    where = (f"Ray ({job.ray})" if job.ray else
             f"{job.workers} worker processes" if job.workers > 1 else "this process")
    log.info("%s: %d segments of ~%g s (%d frames), %d to do, on %s", input,
             len(plan.segments), job.segment_s, plan.frames, len(todo), where)

    def finished(result: SegmentResult) -> None:
        manifest.record(result)
        log.info("segment %d done: %d frames in %.1f s (%d of %d)", result.index,
                 result.frames, result.seconds, len(manifest.finished), len(plan.segments))

    if todo:
        try:
            workers.run(input, todo, folder, finished)
        except BaseException:
            for part in folder.glob("*.part.*"):  # whatever worker (or Ray node) left it
                part.unlink(missing_ok=True)
            raise
    files = [(s.file(folder), s.start or 0) for s in plan.segments]
    written = join_segments(decoded_as_configured(config, input), files, output,
                            config.encode)
    if written != plan.frames:
        output.unlink(missing_ok=True)
        raise JobError(f"the join of {input} has {written} frames, the input "
                       f"{plan.frames}; the segments are kept in {folder}")
    shutil.rmtree(folder)
    stats.frames_in = stats.frames_out = written
    stats.finished = time.monotonic()
    return stats
