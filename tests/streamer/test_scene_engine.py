"""``--task auto`` (streamer/engine/scene.py): each stream's frames go to the task its scene
needs, switching once when the scene changes, untouched where none is needed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hdm.data import read_rgb
from streamer.engine import Engine, EngineBatch, EngineSettings, TemporalState, engine_for_settings
from streamer.engine.colour import rgb_to_yuv420
from streamer.engine.scene import HOLD_FRAMES, SceneEngine
from streamer.errors import EngineError
from streamer.frames import Layout, YuvCoding

SETTINGS = EngineSettings(model="dcp", task="auto", device="cpu", inference_size="full")


@pytest.fixture(scope="module")
def engine() -> SceneEngine:
    built = engine_for_settings(SETTINGS)
    assert isinstance(built, SceneEngine)
    return built


def _day(shared_data: Path) -> np.ndarray:
    """A clean daylight picture (one hdm/scene.py takes for ``none``), 160×96."""
    image = read_rgb(shared_data / "derain/rain100l_prenet_subset/gt/norain-003.png")
    return cv2.resize(image, (160, 96), interpolation=cv2.INTER_AREA)


def test_a_camera_from_day_to_night_switches_task_once(engine: SceneEngine,
                                                      shared_data: Path) -> None:
    day = _day(shared_data)
    night = (day * 0.12).astype(np.uint8)
    frames = [day] * 5 + [night] * (HOLD_FRAMES + 10)
    state = TemporalState()
    outs = [engine.submit(EngineBatch([f], Layout.RGB24), [state]).result()[0] for f in frames]
    untouched = outs[:5 + HOLD_FRAMES - 1]  # night asks for low light, not yet held long enough
    assert all(np.array_equal(out, frame) for out, frame in zip(untouched, frames, strict=False))
    assert all(out.mean() > 2 * night.mean() for out in outs[5 + HOLD_FRAMES:])  # brightened
    memory = state.task
    assert memory.current == "lowlight" and memory.switches == 1
    assert memory.frames == {"none": 5 + HOLD_FRAMES - 1, "lowlight": 11}


def test_streams_in_one_batch_get_their_own_tasks_in_any_layout(engine: SceneEngine,
                                                                shared_data: Path) -> None:
    day = _day(shared_data)
    night = (day * 0.12).astype(np.uint8)
    coding = YuvCoding(1, 1)
    planes = [rgb_to_yuv420(torch.from_numpy(i).permute(2, 0, 1)[None].float() / 255,
                            *coding)[0].numpy() for i in (day, night)]
    states = [TemporalState(), TemporalState()]
    batch = EngineBatch(planes, Layout.I420, [coding] * 2, out_layout=Layout.I420)
    pending = engine.submit(batch, states)
    day_out, night_out = pending.result()
    assert [s.task.current for s in states] == ["none", "lowlight"] == pending.tasks
    assert np.array_equal(day_out, planes[0]) and night_out.shape == planes[1].shape
    assert night_out[:96].mean() > 1.5 * planes[1][:96].mean()  # its Y plane brightened
    rgb = engine.submit(EngineBatch(planes, Layout.I420, [coding] * 2), states).result()
    assert [r.shape for r in rgb] == [(96, 160, 3)] * 2  # planes in, RGB out: converted


def test_auto_is_a_setting_with_its_name_in_the_start_line(engine: SceneEngine) -> None:
    assert engine.description.startswith("task auto (dehaze, derain, lowlight or none)")
    assert set(engine.engines) == {"dehaze", "derain", "lowlight"}


def test_one_task_engine_refuses_auto_and_names_the_builder() -> None:
    with pytest.raises(EngineError, match="engine_for_settings"):
        Engine.build(SETTINGS)
