"""A short real training run (checkpoint, resume, determinism) and the evaluation report."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import hdm
from hdm.data import add_lowlight, find_pairs, read_rgb, to_tensor
from hdm.defects import defects
from hdm.evaluate import evaluate_task
from hdm.train import TrainConfig, train


def scene(seed: int, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 230, (6, 6, 3), dtype=np.uint8)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


@pytest.fixture
def lol_like(tmp_path: Path) -> Path:
    """A LOL-style folder (low/ high/) with pairs made by the low-light degradation (seeds whose
    draw is dark: it leaves one picture in seven well exposed)."""
    root = tmp_path / "lowlight" / "lol_eval10"
    (root / "low").mkdir(parents=True)
    (root / "high").mkdir()
    for i in range(5):
        clean = scene(i)
        cv2.imwrite(str(root / "high" / f"{i}.png"), clean)
        rng = np.random.default_rng(i)
        low = add_lowlight(clean, rng)
        while low.mean() > 0.5 * clean.mean():
            low = add_lowlight(clean, rng)
        cv2.imwrite(str(root / "low" / f"{i}.png"), low)
    return root


def config(tmp_path: Path, data: Path, steps: int, **kw: object) -> TrainConfig:
    return TrainConfig(task="lowlight", out=tmp_path / "low.safetensors", paired=[data],
                       steps=steps, batch=2, crop=32, val_every=4, warmup=2, **kw)  # type: ignore[arg-type]


def test_training_writes_a_loadable_checkpoint_and_resumes(tmp_path: Path, lol_like: Path) -> None:
    summary = train(config(tmp_path, lol_like, steps=4))
    assert [h["step"] for h in summary["history"]] == [4]
    loaded = hdm.load_checkpoint(tmp_path / "low.safetensors")
    assert (loaded.preset, loaded.task) == ("hdm-s", "lowlight")
    assert loaded.model.config.mask_mode == "soft"
    assert loaded.model.config.lowlight_masks
    assert "psnr" in loaded.metrics["validation"]
    resumed = train(config(tmp_path, lol_like, steps=8, resume=True))
    assert [h["step"] for h in resumed["history"]] == [4, 8]
    saved = json.loads((tmp_path / "low.json").read_text())
    assert saved["history"][-1]["step"] == 8


def test_training_is_deterministic_for_a_seed(tmp_path: Path, lol_like: Path) -> None:
    weights = []
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        train(config(out, lol_like, steps=3))
        weights.append(hdm.load_checkpoint(out / "low.safetensors").model.state_dict())
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=0)


def test_evaluation_reports_every_method_and_writes_sheets(tmp_path: Path, lol_like: Path) -> None:
    data_root = lol_like.parents[1]
    out = tmp_path / "report"
    report = evaluate_task("lowlight", {"classical": hdm.build_model("dcp", task="lowlight")},
                           data_root, out, progress=lambda _: None)
    scores = report["paired"]["LOL eval (10)"]  # type: ignore[index]
    assert set(scores) == {"input", "classical"} and scores["input"]["images"] == 5
    assert scores["classical"]["psnr"] > scores["input"]["psnr"]
    table = (out / "lowlight.md").read_text()
    assert "| LOL eval (10) |" in table and "PSNR Y" in table
    assert (out / "lowlight_lol_eval.jpg").is_file()
    # The clean targets as clear pictures: what each method does to what needs nothing.
    clear = report["clear"]["LOL normal light"]["classical"]  # type: ignore[index]
    assert 0 < clear["psnr_to_input"] < 60 and clear["shadows_crushed"] >= 0
    assert "on clear pictures" in table and (out / "lowlight_lol_normal_light.jpg").is_file()
    # The defect measures read on the clean target too: how far each can be taken as a bar.
    calibration = report["paired_defects"]["LOL eval (10)"]  # type: ignore[index]
    assert set(calibration) == {"classical", "target"}
    pairs = find_pairs(lol_like)
    on_targets = [defects(*(to_tensor(read_rgb(p)).unsqueeze(0) for p in pair)) for pair in pairs]
    assert calibration["target"]["streaks_left"] == pytest.approx(
        np.mean([d["streaks_left"] for d in on_targets]))
    assert "| LOL eval (10) | target |" in table


def test_any_folder_of_paired_sets_is_evaluated(tmp_path: Path, lol_like: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "night" / "a").mkdir(parents=True)
    lol_like.rename(mine / "night" / "a" / "pairs")  # low/ + high/, three levels down
    report = evaluate_task("lowlight", {}, mine, tmp_path / "report", progress=lambda _: None)
    assert list(report["paired"]) == ["night/a/pairs"]  # type: ignore[call-overload]
    assert report["paired"]["night/a/pairs"]["input"]["images"] == 5  # type: ignore[index]


def test_a_folder_without_sets_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(hdm.errors.ModelConfigError, match="no evaluation set"):
        evaluate_task("dehaze", {}, tmp_path, tmp_path / "report", progress=lambda _: None)


def test_training_for_a_reduced_inference_size_runs_the_network_on_scaled_crops(
        tmp_path: Path, lol_like: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []
    forward = hdm.HDM.forward

    def recording(self: hdm.HDM, x: torch.Tensor, masks: torch.Tensor | None = None
                  ) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        return forward(self, x, masks)

    monkeypatch.setattr(hdm.HDM, "forward", recording)
    summary = train(config(tmp_path, lol_like, steps=4, reduced_scales=(0.25, 0.5)))
    assert summary["best_validation_psnr"] > 0
    # 32-pixel crops seen at 8 or 16 pixels, validation images (48) at 12 and 24: never whole.
    assert set(seen) <= {(8, 8), (16, 16), (12, 12), (24, 24)}
    assert {(12, 12), (24, 24)} <= set(seen)


def test_reduced_scales_are_checked() -> None:
    with pytest.raises(hdm.ModelConfigError, match="reduced_scales"):
        TrainConfig(task="dehaze", out=Path("x"), clean=[Path("y")], reduced_scales=(0,))
