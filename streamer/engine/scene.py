"""``--task auto``: one engine per task, and each stream's frames sent to the task its scene
needs (hdm/scene.py), or through untouched where none does.

A camera that runs day and night needs low light at night and nothing, or dehazing, by day; a
file of mixed footage needs each shot's own. The choice is made per frame from statistics of a
thumbnail, with two kinds of hysteresis so that a scene changes task once, not back and forth:
thresholds that favour the task already running, and a switch only after ``hold_frames``
frames in a row have asked for the same other task. Each task keeps its own temporal state per
stream (masks, stabiliser, camera); a task switched into starts afresh.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from hdm.scene import SceneStats, SceneTask, classify, scene_stats, thumbnail
from hdm.upsample import FIT_WINDOW_BY_TASK
from streamer.engine.colour import yuv_to_rgb
from streamer.engine.core import Engine, EngineBatch
from streamer.engine.planes import plane_views
from streamer.engine.settings import TASKS, EngineSettings, Optimisations, Task
from streamer.engine.temporal import SmoothingParams, StabiliserParams, TaskMemory, TemporalState
from streamer.engine.transfer import PendingBatch
from streamer.frames import Layout, YuvCoding

__all__ = ["HOLD_FRAMES", "SceneEngine", "follow_scene", "frame_stats"]

log = logging.getLogger(__name__)

HOLD_FRAMES = 25
"""Frames in a row that must ask for another task before a stream switches to it (1 s at 25
fps): long enough to ride out a flash or a passing shadow."""

_THUMBNAIL_WIDTH = 256


def frame_stats(image: np.ndarray, layout: Layout, coding: YuvCoding) -> SceneStats:
    """The scene statistics of a frame in any layout (I420 through a small RGB copy)."""
    if layout.is_rgb:
        return scene_stats(image)
    y, u, v = plane_views(image)
    small = np.stack([thumbnail(p, _THUMBNAIL_WIDTH) for p in (y, u, v)])
    rgb = yuv_to_rgb(torch.from_numpy(small.astype(np.float32))[None], *coding)[0].clamp_(0, 1)
    return scene_stats(rgb.permute(1, 2, 0).contiguous().numpy())


def follow_scene(stats: SceneStats, memory: TaskMemory, hold_frames: int = HOLD_FRAMES
                 ) -> SceneTask:
    """The task for this frame of a stream, with hysteresis (see the module docstring): what
    SceneEngine runs, and what benchmarks/bench_scene.py measures on clips."""
    asked = classify(stats, cast(SceneTask | None, memory.current))
    if memory.current is None:
        memory.current = asked
        log.info("task auto: %s (brightness %.2f, black %.2f, contrast %.3f, streaks %.2f)",
                 asked, stats.brightness, stats.black, stats.contrast, stats.streaks)
    elif asked == memory.current:
        memory.asked, memory.asked_frames = None, 0
    else:
        memory.asked_frames = memory.asked_frames + 1 if asked == memory.asked else 1
        memory.asked = asked
        if memory.asked_frames >= hold_frames:
            log.info("task auto: %s -> %s after %d frames that asked for it",
                     memory.current, asked, memory.asked_frames)
            memory.current, memory.asked, memory.asked_frames = asked, None, 0
            memory.switches += 1
            memory.states.pop(asked, None)  # its history is from another scene
    memory.frames[memory.current] = memory.frames.get(memory.current, 0) + 1
    return cast(SceneTask, memory.current)


@dataclass
class _Merged(PendingBatch):
    """The parts of a batch that went to different tasks, back in the batch's order."""

    parts: list[tuple[list[int], PendingBatch]] = field(default_factory=list)
    count: int = 0

    def result(self) -> list[np.ndarray]:
        images: list[np.ndarray | None] = [None] * self.count
        for indexes, pending in self.parts:
            for index, image in zip(indexes, pending.result(), strict=True):
                images[index] = image
        return [image for image in images if image is not None]


class SceneEngine(Engine):
    """Engines for dehaze, derain and low light behind one ``submit``; each frame goes to the
    task its stream's scene needs. It looks like the first task's engine to the runtime (device,
    layouts, transfers), so streams, batching and outputs work as with one task."""

    def __init__(self, engines: dict[Task, Engine], hold_frames: int = HOLD_FRAMES) -> None:
        first = next(iter(engines.values()))
        super().__init__(first.runner, first.transfer,
                         dataclasses.replace(first.settings, task="auto"))
        self.engines = engines
        self.hold_frames = hold_frames

    @classmethod
    def build_all(cls, settings: EngineSettings, smoothing: SmoothingParams,
                  stabiliser: StabiliserParams, optimisations: Optimisations) -> SceneEngine:
        """Every task's engine, built up front: a switch at night must not wait for a build.
        A ``fit_window`` given goes to the tasks that are fitted (dehazing)."""
        return cls({task: Engine.build(dataclasses.replace(
                        settings, task=task,
                        fit_window=settings.fit_window if task in FIT_WINDOW_BY_TASK else "auto"),
                        smoothing, stabiliser=stabiliser, optimisations=optimisations)
                    for task in cast(tuple[Task, ...], TASKS)})

    @property
    def description(self) -> str:
        engine = next(iter(self.engines.values()))
        shared = engine.runner.description.replace(f" ({engine.settings.task})", "")
        fitted = [f"{task} fitted to its input ({e.runner.fit_radius})"
                  for task, e in self.engines.items() if e.runner.fit_radius]
        return f"task auto ({', '.join(self.engines)} or none): " + "; ".join([shared, *fitted])

    def warmup(self, height: int, width: int, batch: int = 1, *, rate: float | None = None,
               live: bool = False) -> None:
        for engine in self.engines.values():
            engine.warmup(height, width, batch, rate=rate, live=live)

    def inference_note(self, height: int, width: int) -> str:
        return "; ".join(f"{task} {engine.inference_note(height, width)}"
                         for task, engine in self.engines.items())

    def submit(self, batch: EngineBatch, states: Sequence[TemporalState]) -> PendingBatch:
        if not batch.images:
            return super().submit(batch, states)
        codings = batch.codings or [YuvCoding(1, 1)] * len(batch.images)
        groups: dict[SceneTask, list[int]] = {}
        for index, (image, state) in enumerate(zip(batch.images, states, strict=True)):
            task = follow_scene(frame_stats(image, batch.layout, codings[index]), state.task,
                                self.hold_frames)
            groups.setdefault(task, []).append(index)
        merged = _Merged(torch.empty(0, dtype=torch.uint8), batch.result_layout,
                         count=len(batch.images))
        merged.tasks = [""] * len(batch.images)
        for task, indexes in groups.items():
            for index in indexes:
                merged.tasks[index] = task
            part = dataclasses.replace(
                batch, images=[batch.images[i] for i in indexes],
                codings=[batch.codings[i] for i in indexes] if batch.codings else (),
                transfers=[batch.transfers[i] for i in indexes] if batch.transfers else ())
            if task == "none":
                merged.parts.append((indexes, self._untouched(part)))
            else:
                task_states = [states[i].task.states.setdefault(task, TemporalState())
                               for i in indexes]
                engine = self.engines[task]
                merged.parts.append((indexes, engine.submit(part, task_states)))
        return merged

    def _untouched(self, batch: EngineBatch) -> PendingBatch:
        """Frames no task should touch, in the layout asked for."""
        if batch.layout is batch.result_layout:
            return PendingBatch.ready(list(batch.images), batch.layout)
        x = self.transfer.upload(batch.images, batch.layout, batch.codings)
        return self.transfer.download(x, batch.result_layout, batch.codings)


def engine_for_settings(settings: EngineSettings,
                        smoothing: SmoothingParams = SmoothingParams(), *,
                        stabiliser: StabiliserParams = StabiliserParams(),
                        optimisations: Optimisations = Optimisations()) -> Engine:
    """The engine the settings ask for: with ``task: auto`` a :class:`SceneEngine`, else
    :meth:`Engine.build`'s (what run, serve and the Python API build from a user's settings)."""
    if settings.task == "auto":
        return SceneEngine.build_all(settings, smoothing, stabiliser, optimisations)
    return Engine.build(settings, smoothing, stabiliser=stabiliser, optimisations=optimisations)
