"""The Python API for one's own frames: the CLI's engine and temporal state, validated input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamer import Enhancer, FrameError
from streamer.engine import Engine, EngineSettings
from streamer.engine.temporal import SmoothingParams, TemporalState
from streamer.errors import ConfigError


def frames(count: int, dtype: type = np.uint8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (48, 64, 3))
    scale = 257 if dtype is np.uint16 else 1
    return [((base + rng.integers(-3, 4, base.shape)) * scale).astype(dtype)
            for _ in range(count)]


def test_enhance_equals_the_engine_the_cli_builds() -> None:
    video = frames(6)
    enhancer = Enhancer("dehaze", model="dcp", device="cpu")
    ours = [enhancer.enhance(f)[0] for f in video[:3]] + enhancer.enhance(video[3:])
    engine = Engine.build(EngineSettings(task="dehaze", model="dcp", device="cpu", colour="host"),
                          SmoothingParams())
    state = TemporalState()  # one video: the state carries over between calls
    reference = [engine.enhance([f], state)[0] for f in video]
    for a, b in zip(ours, reference, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert np.abs(ours[0].astype(int) - video[0]).mean() > 5  # it did enhance


def test_stream_batches_a_generator_in_order_and_keeps_dtype() -> None:
    video = frames(5, np.uint16)
    one_by_one = Enhancer("dehaze", model="dcp", device="cpu")
    expected = [one_by_one.enhance(f)[0] for f in video]
    streamed = list(Enhancer("dehaze", model="dcp", device="cpu").stream(iter(video), batch=2))
    assert len(streamed) == 5 and all(f.dtype == np.uint16 for f in streamed)
    for a, b in zip(streamed, expected, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 257


def test_reset_starts_a_new_video() -> None:
    video = frames(4)
    enhancer = Enhancer("dehaze", model="dcp", device="cpu")
    first = enhancer.enhance(video[0])[0]
    enhancer.enhance(video[1:])
    enhancer.reset()
    np.testing.assert_array_equal(enhancer.enhance(video[0])[0], first)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((8, 8), np.uint8), "grey"),
        (np.zeros((8, 8, 4), np.uint8), "RGBA"),
        (np.zeros((8, 8, 3), np.float32), "float32 (scale float images"),
        (np.zeros((0, 8, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_frames_are_refused_saying_what_they_are(frame: object, message: str) -> None:
    enhancer = Enhancer("dehaze", model="dcp", device="cpu")
    with pytest.raises(FrameError, match=message.replace("(", r"\(")):
        enhancer.enhance(frame)  # type: ignore[arg-type]


def test_a_batch_of_mixed_sizes_is_refused() -> None:
    enhancer = Enhancer("dehaze", model="dcp", device="cpu")
    with pytest.raises(FrameError, match="share size"):
        enhancer.enhance([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)])


def test_the_fit_window_reaches_the_engine_and_is_checked() -> None:
    video = frames(1)
    fitted = Enhancer("dehaze", model="hdm-s", weights="random", device="cpu",
                      inference_size="full", fit_window="1/4")
    unfitted = Enhancer("dehaze", model="hdm-s", weights="random", device="cpu",
                        inference_size="full", fit_window=0)
    assert fitted.engine.runner.fit_window == 0.25 and unfitted.engine.runner.fit_window == 0
    assert np.abs(fitted.enhance(video)[0].astype(int)
                  - unfitted.enhance(video)[0].astype(int)).max() > 0
    with pytest.raises(ConfigError, match="^Enhancer: .*fit_window"):
        Enhancer("derain", model="hdm-s", weights="random", device="cpu", fit_window=0.1)


def test_a_live_enhancer_keeps_derain_in_the_budget_where_frames_of_a_file_get_its_floor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the choice file, kept out of the user's
    caplog.set_level("INFO", "streamer.engine.runner")
    frame = np.zeros((360, 640, 3), np.uint8)
    sides = {}
    for live in (False, True):
        enhancer = Enhancer("derain", model="dcp", device="cpu", rate=1000.0, live=live)
        enhancer.enhance(frame)
        sides[live] = enhancer.engine.runner.short_side(360, 640)
    assert sides == {False: 288, True: 96}
    said = [r.getMessage() for r in caplog.records if "rain streaks stay" in r.getMessage()]
    assert len(said) == 1 and "171x96" in said[0]  # the live one, in the log
