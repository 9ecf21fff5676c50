"""GPU parity of the streamer: colour conversion and the engine on CUDA against the CPU.
Skipped without a GPU, or without PyAV (the training lease carries no wheels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("av", reason="PyAV is not installed (carry .whl, see gpu_suite.sh)")
pytest.importorskip("zmq", reason="pyzmq is not installed (carry .whl, see gpu_suite.sh)")

from streamer.engine import (
    Engine,
    EngineBatch,
    EngineSettings,
    SmoothingParams,
    TemporalState,
)
from streamer.engine.colour import rgb_to_yuv420, yuv420_to_rgb
from streamer.engine.settings import Backend
from streamer.frames import Layout, YuvCoding

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def test_device_colour_on_cuda_equals_the_cpu() -> None:
    planes = torch.randint(0, 256, (2, 96, 128), dtype=torch.uint8)
    for matrix, color_range in ((1, 1), (6, 2), (9, 1)):
        cpu = yuv420_to_rgb(planes, matrix, color_range)
        gpu = yuv420_to_rgb(planes.to(CUDA), matrix, color_range).cpu()
        assert (gpu - cpu).abs().max() < 1e-5
        back_cpu = rgb_to_yuv420(cpu, matrix, color_range)
        back_gpu = rgb_to_yuv420(gpu.to(CUDA), matrix, color_range).cpu()
        assert (back_gpu.int() - back_cpu.int()).abs().max() <= 1


@pytest.mark.parametrize("backend", ["eager", "compile"])
def test_engine_on_cuda_matches_the_cpu_engine(backend: Backend) -> None:
    images = [np.random.default_rng(i).integers(0, 256, (96, 128, 3), dtype=np.uint8)
              for i in range(3)]
    smoothing = SmoothingParams(enabled=False)
    cpu = Engine.build(EngineSettings(task="dehaze", model="hdm-s", device="cpu"), smoothing)
    gpu = Engine.build(EngineSettings(task="dehaze", model="hdm-s", device="cuda", backend=backend,
                                      precision="fp32"), smoothing)
    expected = np.stack(cpu.enhance(images)).astype(int)
    got = np.stack(gpu.enhance(images)).astype(int)
    assert np.abs(got - expected).max() <= 2


def test_batches_in_flight_return_what_one_at_a_time_returns() -> None:
    engine = Engine.build(EngineSettings(task="dehaze", model="hdm-s", device="cuda"),
                          SmoothingParams(enabled=False))
    batches = [[np.random.default_rng(10 * b + i).integers(0, 256, (128, 192, 3), np.uint8)
                for i in range(4)] for b in range(4)]
    expected = [np.stack(engine.enhance(batch)) for batch in batches]
    pending = [engine.submit(EngineBatch(batch, Layout.RGB24), [TemporalState()] * 4)
               for batch in batches]  # all queued before any is read
    for want, handle in zip(expected, pending, strict=True):
        assert np.array_equal(np.stack(handle.result()), want)


def test_planes_and_sixteen_bit_frames_upload_on_cuda() -> None:
    engine = Engine.build(EngineSettings(task="dehaze", model="dcp", device="cuda"))
    deep = np.random.default_rng(0).integers(0, 65536, (64, 96, 3), dtype=np.uint16)
    assert torch.allclose(engine.transfer.upload([deep], Layout.RGB48).cpu(),
                          torch.from_numpy(deep.astype(np.float32) / 65535).permute(2, 0, 1)[None])
    planes = np.random.default_rng(1).integers(0, 256, (96, 96), dtype=np.uint8)
    batch = EngineBatch([planes, planes], Layout.I420, [YuvCoding(1, 1), YuvCoding(6, 2)],
                        out_layout=Layout.I420)
    out = engine.submit(batch, [TemporalState(), TemporalState()]).result()
    assert out[0].shape == planes.shape and out[0].dtype == np.uint8
    assert not np.array_equal(out[0], out[1])  # each frame by its own coding


def test_cuda_graphs_keep_earlier_results_intact() -> None:
    settings = EngineSettings(task="dehaze",
                              model="hdm-s", device="cuda", compile_mode="reduce-overhead")
    engine = Engine.build(settings, SmoothingParams(enabled=False))
    first = [np.full((128, 192, 3), 40, np.uint8)]
    second = [np.full((128, 192, 3), 200, np.uint8)]
    for _ in range(3):  # record, then replay
        engine.enhance(first)
    a = engine.submit(EngineBatch(first, Layout.RGB24), [TemporalState()])
    b = engine.submit(EngineBatch(second, Layout.RGB24), [TemporalState()])
    assert not np.array_equal(a.result()[0], b.result()[0])
    assert np.array_equal(a.result()[0], engine.enhance(first)[0])
