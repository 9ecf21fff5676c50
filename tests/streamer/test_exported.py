"""The CPU runtimes (OpenVINO, ONNX Runtime) against eager PyTorch, and their export cache."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from streamer.engine import Engine, EngineSettings, TemporalState
from streamer.engine.settings import Backend, Precision
from streamer.errors import EngineError

pytestmark = pytest.mark.slow


def _frames(count: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (72, 120, 3), np.uint8) for _ in range(count)]


def _enhance(settings: EngineSettings) -> np.ndarray:
    engine = Engine.build(settings)
    return np.stack(engine.enhance(_frames(), TemporalState())).astype(int)


@pytest.mark.parametrize(("backend", "precision", "tolerance"), [
    ("openvino", "fp32", 1), ("onnxruntime", "fp32", 1), ("openvino", "bf16", 8)])
def test_exported_backends_match_eager(tmp_path: Path, backend: Backend, precision: Precision,
                                       tolerance: int) -> None:
    """fp32: rounding only (at most one level, measured 1); bf16: 8 mantissa bits inside the
    network (measured at most 3 levels on 720p frames; the quality guard bounds its PSNR)."""
    pytest.importorskip(backend)
    reference = EngineSettings(model="hdm-s", task="dehaze", device="cpu", backend="eager",
                               cache_dir=str(tmp_path), inference_size="full")
    eager = _enhance(reference)
    got = _enhance(replace(reference, backend=backend, precision=precision))
    assert np.abs(got - eager).max() <= tolerance


def test_an_export_is_made_once_and_then_read_from_the_cache(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("openvino")
    settings = EngineSettings(task="dehaze", model="hdm-s", device="cpu", backend="openvino",
                              cache_dir=str(tmp_path), inference_size="full")
    with caplog.at_level(logging.WARNING, logger="streamer.engine.exported"):
        first = _enhance(settings)
        assert sum("exporting the network" in r.message for r in caplog.records) == 1
        assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1
        caplog.clear()
        again = _enhance(settings)
    assert not any("exporting" in r.message for r in caplog.records)
    np.testing.assert_array_equal(first, again)
    assert not list((tmp_path / "onnx").glob("*.part"))


def test_onnxruntime_refuses_bf16_in_one_line() -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(EngineError, match="onnxruntime backend runs fp32 only"):
        Engine.build(EngineSettings(task="dehaze",
                                    model="hdm-s", device="cpu", backend="onnxruntime",
                                    precision="bf16"))


def test_auto_on_a_cpu_is_openvino_for_hdm_and_eager_for_the_classical_enhancer() -> None:
    pytest.importorskip("openvino")
    assert Engine.build(EngineSettings(task="dehaze",
                                       model="hdm-s", device="cpu")).backend == "openvino"
    assert Engine.build(EngineSettings(task="dehaze", model="dcp", device="cpu")).backend == "eager"
