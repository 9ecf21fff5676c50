"""What ``auto`` chooses: the decision from a cost model, with no clock in the test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hdm.upsample import reduced_size
from streamer.config import load_config
from streamer.engine import Engine
from streamer.engine import runner as runner_module
from streamer.engine.resolution import (
    CANDIDATES,
    ENGINE_SHARE,
    SMALLEST_SHARE,
    Choice,
    ChoiceCache,
    choose_size,
)
from streamer.engine.settings import EngineSettings, parse_inference_size
from streamer.errors import ConfigError


def _linear_cost(height: int, width: int, fixed_ms: float, per_megapixel_ms: float
                 ) -> tuple[Callable[[int | None], float], list[int | None]]:
    """A cost model of ``fixed_ms`` plus ``per_megapixel_ms`` a megapixel, and the sides it
    was asked about."""
    asked: list[int | None] = []

    def cost(side: int | None) -> float:
        asked.append(side)
        h, w = (height, width) if side is None else reduced_size(height, width, side)
        return fixed_ms + per_megapixel_ms * h * w / 1e6

    return cost, asked


def test_the_largest_size_that_fits_the_budget_is_chosen() -> None:
    # 25 fps on a CPU: a 20 ms budget. At 12 ms fixed and 1000 ms a megapixel, even the
    # smallest candidate (171x96: 28 ms) misses: it is chosen, and said to miss.
    cost, _ = _linear_cost(720, 1280, 12.0, 1000.0)
    choice = choose_size(cost, 720, 1280, device="cpu", rate=25)
    assert choice.short_side == CANDIDATES[-1]
    assert "misses" in choice.describe(720, 1280)
    # Ten times cheaper per pixel: 320x180 takes 17.8 ms, 384x216 20.3 ms: 180 is chosen.
    cost, asked = _linear_cost(720, 1280, 12.0, 100.0)
    choice = choose_size(cost, 720, 1280, device="cpu", rate=25)
    assert choice.short_side == 180
    assert choice.cost_ms is not None and choice.cost_ms <= choice.budget_ms
    assert None not in asked  # full resolution was never run


def test_full_resolution_when_it_is_predicted_to_fit_and_the_budget_follows_the_rate() -> None:
    cost, _ = _linear_cost(360, 640, 0.0, 10.0)  # 2.3 ms at full resolution
    assert choose_size(cost, 360, 640, device="cpu", rate=25).short_side is None
    slow, _ = _linear_cost(360, 640, 0.0, 80.0)  # 18.4 ms: fits 25 fps, not 50 fps
    assert choose_size(slow, 360, 640, device="cpu", rate=25).short_side is None
    assert choose_size(slow, 360, 640, device="cpu", rate=50).short_side is not None
    gpu = choose_size(slow, 360, 640, device="cuda", rate=50)
    assert gpu.budget_ms == pytest.approx(ENGINE_SHARE["cuda"] / 50 * 1e3)


def test_frames_no_larger_than_the_candidates_run_at_full_resolution_untimed() -> None:
    cost, asked = _linear_cost(64, 96, 0.0, 1e6)
    choice = choose_size(cost, 64, 96, device="cpu", rate=25)
    assert choice.short_side is None and asked == []


def test_derain_never_goes_below_its_share_of_the_frame_even_over_budget() -> None:
    """Below 0.75 of the shorter side derain fell under its input's PSNR on the rainy video
    frames: the floor holds where the budget would take it lower, and is said to miss."""
    cost, asked = _linear_cost(720, 1280, 12.0, 100.0)  # dehaze's budget choice: 180
    choice = choose_size(cost, 720, 1280, device="cpu", rate=25,
                         smallest_share=SMALLEST_SHARE["derain"])
    assert choice.short_side == 540 and "misses" in choice.describe(720, 1280)
    assert None not in asked and min(s for s in asked if s) >= 540  # nor timed below it
    cheap, _ = _linear_cost(720, 1280, 0.0, 1.0)  # fits at full resolution: no cap above
    assert choose_size(cheap, 720, 1280, device="cpu", rate=25,
                       smallest_share=0.75).short_side is None
    floor_1080, _ = _linear_cost(1080, 1920, 12.0, 100.0)
    assert choose_size(floor_1080, 1080, 1920, device="cpu", rate=25,
                       smallest_share=0.75).short_side == 810


def test_a_size_per_task_is_kept_per_task_and_each_engine_takes_its_own() -> None:
    settings = EngineSettings(inference_size="derain=540")
    assert settings.inference_size == "dehaze=auto,derain=540,lowlight=auto"
    assert settings.size_for("derain") == 540 and settings.size_for("dehaze") == "auto"
    assert EngineSettings(task="derain", inference_size={"derain": 540}).size_for("derain") == 540
    assert parse_inference_size({"dehaze": 96, "derain": 96, "lowlight": 96}) == 96
    with pytest.raises(ConfigError, match="inference_size.derain must be at least"):
        EngineSettings(inference_size="derain=8")
    with pytest.raises(ConfigError, match="no task 'rain'"):
        EngineSettings(inference_size="rain=540")


def test_a_per_task_size_from_yaml_survives_a_flag_that_changes_the_task(
        tmp_path: Path) -> None:
    """A YAML mapping is taken, and a task set later (a flag over the file, a serve stream
    over the shared model) still finds its own size: the settings keep every task's."""
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  task: dehaze\n  model: dcp\n  device: cpu\n"
                    "  inference_size:\n    derain: 540\n")
    config = load_config(path).with_overrides(model={"task": "derain"})
    assert config.model.size_for("derain") == 540
    assert Engine.build(config.model).runner.inference_size == 540
    assert Engine.build(config.with_overrides(model={"task": "dehaze"}).model
                        ).runner.inference_size == "auto"
    with pytest.raises(ConfigError, match="derain given twice"):
        EngineSettings(inference_size="derain=540,derain=96")


@pytest.mark.parametrize(("value", "expected"), [("full", "full"), ("auto", "auto"),
                                                  ("128", 128), (96, 96)])
def test_inference_size_settings(value: int | str, expected: int | str) -> None:
    assert EngineSettings(inference_size=value).inference_size == expected


@pytest.mark.parametrize("value", ["half", "12", 0, True])
def test_bad_inference_sizes_are_refused_naming_the_key(value: object) -> None:
    with pytest.raises(ConfigError, match="inference_size"):
        EngineSettings(inference_size=value)  # type: ignore[arg-type]


def test_auto_choices_are_kept_so_the_same_command_gives_the_same_frames(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = EngineSettings(task="dehaze", model="hdm-s", device="cpu", backend="eager",
                              cache_dir=str(tmp_path))
    first = Engine.build(settings)
    first.warmup(120, 200, rate=1000.0)  # a budget nothing meets: the smallest size, measured
    assert first.runner.short_side(120, 200) == CANDIDATES[-1]
    assert (tmp_path / "inference-sizes.json").is_file()

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured again")

    monkeypatch.setattr(runner_module, "choose_size", never)
    again = Engine.build(settings)
    again.warmup(120, 200, rate=1000.0)
    assert again.runner.short_side(120, 200) == CANDIDATES[-1]


def test_a_file_derains_at_its_floor_where_a_live_stream_keeps_its_budget(
        tmp_path: Path) -> None:
    """A file has no deadline, so derain sees 3/4 of the frame however long that takes; a live
    stream drops what it cannot keep up with, so it keeps the budget's size, and its start line
    says the streaks stay. The two are kept apart in the choice file."""
    settings = EngineSettings(task="derain", model="dcp", device="cpu", cache_dir=str(tmp_path))
    file, live = Engine.build(settings), Engine.build(settings)
    file.warmup(360, 640, rate=1000.0)  # a budget nothing meets
    live.warmup(360, 640, rate=1000.0, live=True)
    assert file.runner.short_side(360, 640) == 288  # the smallest candidate >= 270
    assert live.runner.short_side(360, 640) == CANDIDATES[-1]
    assert "rain streaks stay" in live.inference_note(360, 640)
    assert "streaks" not in file.inference_note(360, 640)
    again = Engine.build(settings)
    again.warmup(360, 640, rate=1000.0)  # from the file, not the live stream's entry
    assert again.runner.short_side(360, 640) == 288


def test_a_damaged_choice_file_is_measured_again_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "inference-sizes.json"
    path.write_text("{not json")
    cache = ChoiceCache(path)
    assert cache.get("anything") is None
    cache.put("key", Choice(128, 12.5, 20.0))
    assert ChoiceCache(path).get("key") == Choice(128, 12.5, 20.0)
