"""The engine: backends and their fallbacks, precision checks, size changes, HDM checkpoints."""

from __future__ import annotations

import logging
import shutil
import typing
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import hdm
from hdm.upsample import apply_field, fit_to_input
from hdm.weights import DEFAULT_WEIGHTS, REDUCED_WEIGHTS
from streamer.engine import Engine, EngineBatch, EngineSettings, TemporalState, engine_for_settings
from streamer.engine.runner import ModelRunner
from streamer.engine.scene import SceneEngine
from streamer.engine.settings import Task
from streamer.errors import ConfigError, EngineError
from streamer.frames import Layout, YuvCoding
from tests.hdm.parts import as_hdm

TASKS: tuple[Task, ...] = typing.get_args(Task)


def test_tensorrt_falls_back_with_one_line_when_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        engine = Engine.build(EngineSettings(task="dehaze",
                                             model="dcp", device="cpu", backend="tensorrt"))
    assert engine.backend == "eager"
    assert any("tensorrt" in r.message for r in caplog.records)


def test_fp16_on_cpu_and_unknown_backends_are_refused() -> None:
    with pytest.raises(EngineError, match="fp16 needs a GPU"):
        Engine.build(EngineSettings(task="dehaze", model="dcp", device="cpu", precision="fp16"))
    with pytest.raises(ConfigError, match="backend must be one of"):
        EngineSettings(model="dcp", device="cpu", backend="onnx")  # type: ignore[arg-type]


def test_resolution_change_mid_stream_works() -> None:
    engine = Engine.build(EngineSettings(task="dehaze",
                                         model="hdm-s", weights="random", device="cpu"))
    first = engine.enhance([np.full((48, 64, 3), 120, np.uint8)] * 2)
    second = engine.enhance([np.full((30, 42, 3), 120, np.uint8)])
    assert first[0].shape == (48, 64, 3) and second[0].shape == (30, 42, 3)
    assert first[0].dtype == np.uint8


def test_sixteen_bit_frames_stay_sixteen_bit() -> None:
    engine = Engine.build(EngineSettings(task="dehaze", model="dcp", device="cpu"))
    out = engine.enhance([np.full((32, 32, 3), 40000, np.uint16)])
    assert out[0].dtype == np.uint16 and out[0].max() > 255


def test_a_saved_checkpoint_runs_through_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "dehaze.safetensors"
    model = as_hdm(hdm.build_model("hdm-s", weights="random", mask_mode="soft"))
    hdm.save_checkpoint(model, path, task="dehaze")
    engine = Engine.build(EngineSettings(task="dehaze",
                                         model="hdm-s", weights=str(path), device="cpu"))
    assert "hdm-s" in engine.description
    assert engine.enhance([np.zeros((20, 20, 3), np.uint8)])[0].shape == (20, 20, 3)


def test_bad_compile_mode_and_colour_are_refused() -> None:
    with pytest.raises(ConfigError, match="compile_mode must be one of"):
        EngineSettings(model="dcp", device="cpu", compile_mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="colour must be one of"):
        EngineSettings(model="dcp", device="cpu", colour="gpu")  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile on the CPU needs a C++ compiler")
@pytest.mark.slow
def test_compiled_engine_equals_eager_on_the_cpu() -> None:
    """The path the GPU runs by default (compiled network, compiled DCP estimate, smoothed
    masks over several batches), here with inductor's CPU code: about 80 s of compiling."""
    frames = [np.random.default_rng(i).integers(0, 256, (64, 96, 3), np.uint8) for i in range(6)]
    compiled = Engine.build(EngineSettings(task="dehaze",
                                           model="hdm-s", device="cpu", backend="compile"))
    eager = Engine.build(EngineSettings(task="dehaze",
                                        model="hdm-s", device="cpu", backend="eager"))
    compiled_video, eager_video = TemporalState(), TemporalState()
    for batch in (frames[:2], frames[2:4], frames[4:]):
        got = np.stack(compiled.enhance(batch, compiled_video)).astype(int)
        want = np.stack(eager.enhance(batch, eager_video)).astype(int)
        assert np.abs(got - want).max() <= 1


class ShapeRecorder(torch.nn.Module):
    """Runs a model and records the batch shapes it was given."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.shapes: list[tuple[int, ...]] = []

    @property
    def batches(self) -> list[int]:
        return [shape[0] for shape in self.shapes]

    def forward(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return self.model(x, masks)


def test_compiled_backends_pad_short_batches_without_smoothing_over_the_padding() -> None:
    settings = EngineSettings(task="dehaze", model="hdm-s", device="cpu", backend="eager")
    eager = Engine.build(settings)
    recorder = ShapeRecorder(eager.model)
    runner = ModelRunner(eager.model, recorder, eager.device, torch.float32, "compile",
                         channels_last=True, fit_window=eager.runner.fit_window)
    padded = Engine(runner, eager.transfer, settings)
    padded.warmup(64, 96, batch=4)
    frames = [np.random.default_rng(i).integers(0, 256, (64, 96, 3), np.uint8) for i in range(7)]
    padded_video, eager_video = TemporalState(), TemporalState()
    for batch in (frames[:4], frames[4:6], frames[6:]):  # 4, then short batches of 2 and 1
        got = np.stack(padded.enhance(batch, padded_video)).astype(int)
        # Convolutions round differently by batch size: at most one level apart. Smoothing over
        # the padding would shift the next batch's masks, and its pixels, by far more.
        assert np.abs(got - np.stack(eager.enhance(batch, eager_video))).max() <= 1
    assert recorder.batches == [4, 4, 4, 4]  # warm-up, then every batch padded to 4


def test_a_batch_mixing_streams_and_colour_codings_equals_each_frame_alone() -> None:
    """Frames of two streams, tagged BT.709 limited and BT.601 full, in one I420 batch: each
    comes back as if enhanced on its own, with its own coding and its own stream's state."""
    engine = Engine.build(EngineSettings(task="dehaze",
                                         model="hdm-s", device="cpu", colour="device"))
    rng = np.random.default_rng(0)
    planes = [rng.integers(16, 236, (96, 64), dtype=np.uint8) for _ in range(2)]
    codings = [YuvCoding(1, 1), YuvCoding(6, 2)]
    mixed = engine.submit(EngineBatch(planes, Layout.I420, codings, out_layout=Layout.I420),
                          [TemporalState(), TemporalState()]).result()
    for image, coding, got in zip(planes, codings, mixed, strict=True):
        alone = engine.submit(EngineBatch([image], Layout.I420, [coding], out_layout=Layout.I420),
                              [TemporalState()]).result()[0]
        assert got.shape == image.shape and np.abs(got.astype(int) - alone).max() <= 1
    assert np.abs(mixed[0].astype(int) - mixed[1]).mean() > 1  # the codings did differ


def test_a_reduced_inference_size_runs_the_network_small_and_fits_its_effect_back() -> None:
    """The network sees the frame at the asked shorter side; the result is the fitted affine
    transform of the full frame, so it keeps the input's full-resolution texture."""
    settings = EngineSettings(task="dehaze",
                              model="hdm-s", device="cpu", backend="eager", inference_size=48)
    engine = Engine.build(settings)
    recorder = ShapeRecorder(engine.model)
    engine.runner.runner = recorder
    rng = np.random.default_rng(0)  # 8x8 blocks: sharp edges the small copy blurs away
    blocks = rng.integers(40, 216, (12, 20, 3), np.uint8)
    frame = np.kron(blocks, np.ones((8, 8, 1), np.uint8))
    (got,) = engine.enhance([frame])
    assert recorder.shapes == [(1, 3, 48, 80)]
    assert got.shape == frame.shape and got.dtype == np.uint8
    assert engine.inference_note(96, 160) == ("80x48 (channel fit, radius 1/32 of the frame, "
                                              "to 160x96)")
    full = Engine.build(replace(settings, inference_size="full"))
    # The reduced output follows the full frame's own detail, not a blurred small picture.
    (reference,) = full.enhance([frame])
    detail = np.abs(np.diff(frame.astype(int), axis=1)).mean()
    assert np.abs(np.diff(got.astype(int), axis=1)).mean() > 0.5 * detail
    assert np.abs(got.astype(int) - reference).mean() < 40


@pytest.mark.parametrize("layout", [Layout.RGB48, Layout.I420])
def test_a_reduced_inference_size_works_for_16_bit_and_planar_frames(layout: Layout) -> None:
    engine = Engine.build(EngineSettings(task="dehaze",
                                         model="hdm-s", device="cpu", backend="eager",
                                         colour="device", inference_size=48))
    rng = np.random.default_rng(0)
    if layout is Layout.I420:
        images = [rng.integers(16, 236, (144, 160), np.uint8) for _ in range(3)]
        codings = [YuvCoding(1, 1)] * 3
        batch = EngineBatch(images, layout, codings, out_layout=Layout.I420)
    else:
        images = [rng.integers(0, 65536, (96, 160, 3), np.uint16) for _ in range(3)]
        batch = EngineBatch(images, layout)
    got = engine.submit(batch, [TemporalState() for _ in images]).result()
    assert [g.shape for g in got] == [i.shape for i in images]
    assert all(g.dtype == i.dtype for g, i in zip(got, images, strict=True))


def test_default_weights_follow_the_inference_size() -> None:
    """weights: default is the task's reduced-size weights where it ships them (trained
    through the fit), and the full-resolution ones at full resolution."""
    for task in TASKS:
        if (member := REDUCED_WEIGHTS.get(task)) is None:
            continue
        reduced = Engine.build(EngineSettings(task=task, device="cpu", backend="eager",
                                              inference_size=96))
        full = Engine.build(EngineSettings(task=task, device="cpu", backend="eager",
                                           inference_size="full"))
        expected = {"reduced": member, "full": DEFAULT_WEIGHTS[task]}
        for name, engine in (("reduced", reduced), ("full", full)):
            shipped = hdm.load_checkpoint(expected[name].value.verified_path()).model
            for key, value in shipped.state_dict().items():
                if key in engine.model.state_dict() and "head" not in key:  # the head is fused
                    torch.testing.assert_close(engine.model.state_dict()[key], value)


def test_dehazing_is_fitted_to_the_input_over_wide_windows_unless_turned_off() -> None:
    """``fit_window`` auto is the task's (1/32 for dehaze, none for rain), named in the start
    line; 0 gives the network's own output."""
    settings = EngineSettings(task="dehaze", model="hdm-s", device="cpu", backend="eager",
                              inference_size="full")
    assert settings.resolved_fit_window == 1 / 32
    assert replace(settings, task="derain").resolved_fit_window == 0
    fitted, raw = Engine.build(settings), Engine.build(replace(settings, fit_window=0))
    assert fitted.inference_note(96, 160) == ("full resolution (channel fit, radius 1/32 of "
                                              "the frame)")
    assert fitted.description.endswith("fitted to its input (radius 1/32 of the frame)")
    assert raw.inference_note(96, 160) == "full resolution"
    frame = np.random.default_rng(0).integers(60, 180, (96, 160, 3), np.uint8)
    (got,) = fitted.enhance([frame])
    (own,) = raw.enhance([frame])
    x, out = (torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in (frame, own))
    expected = apply_field(fit_to_input(x, out, window=1 / 32), x).clamp(0, 1)
    expected_frame = (expected[0].permute(1, 2, 0) * 255).round().numpy()
    assert np.abs(got.astype(int) - expected_frame).max() <= 1  # fitted, once, as hdm does it
    assert np.abs(got.astype(int) - own).mean() > 1  # and not the network's own output


def test_a_fit_window_is_parsed_as_written_and_kept_to_dehazing() -> None:
    assert EngineSettings(task="dehaze", fit_window="1/16").resolved_fit_window == 1 / 16
    assert EngineSettings(task="dehaze", fit_window="0.05").resolved_fit_window == 0.05
    for bad in ("1/0", "wide", True, 0.7):
        with pytest.raises(ConfigError, match="fit_window must be auto or a fraction"):
            EngineSettings(task="dehaze", fit_window=bad)
    with pytest.raises(ConfigError, match="fit_window is for dehazing, not derain"):
        EngineSettings(task="derain", fit_window=0.05)
    with pytest.raises(ConfigError, match="fit_window is for HDM's output"):
        EngineSettings(task="dehaze", model="dcp", fit_window=0.05)
    with pytest.raises(ConfigError, match="got '1/1'"):  # as written, not as converted
        EngineSettings(task="dehaze", fit_window="1/1")
    # With task auto a given window goes to the dehazing engine only.
    scene = engine_for_settings(EngineSettings(task="auto", model="hdm-s", device="cpu",
                                               backend="eager", fit_window=0.05))
    assert isinstance(scene, SceneEngine)
    assert {task: engine.runner.fit_window for task, engine in scene.engines.items()} == {
        "dehaze": 0.05, "derain": 0.0, "lowlight": 0.0}
    assert scene.description.endswith("(eager, fp32); dehaze fitted to its input (radius 1/20 "
                                      "of the frame)")
