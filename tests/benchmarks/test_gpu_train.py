"""A dry run of the GPU training lease's script on the CPU, so that it cannot rot between leases:
six models for a few seconds on tiny data, the files the lease brings back, loadable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import hdm
from benchmarks.gpu_train import RECIPES

ROOT = Path(__file__).resolve().parents[2]
LAYOUTS = {"dehaze": ("hazy", "gt"), "derain": ("rain", "norain"), "lowlight": ("low", "high")}


def tiny_training_data(root: Path) -> None:
    rng = np.random.default_rng(0)
    for task, recipe in RECIPES.items():
        for folder in recipe["paired"]:
            degraded, clean = (root / folder / name for name in LAYOUTS[task])
            degraded.mkdir(parents=True)
            clean.mkdir()
            for i in range(5):
                image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
                cv2.imwrite(str(clean / f"{i}.jpg"), image)
                cv2.imwrite(str(degraded / f"{i}.jpg"), image // 2)
        for folder in recipe["clean"]:
            (root / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / folder / "0.jpg"), rng.integers(0, 256, (64, 64, 3),
                                                                   dtype=np.uint8))


@pytest.mark.slow
def test_gpu_train_script_dry_run(tmp_path: Path) -> None:
    tiny_training_data(tmp_path / "data")
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "DEVICE": "cpu",
           "SMALL": "1", "SECONDS_PER_MODEL": "2", "TRAIN_DATA": str(tmp_path / "data")}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_train.sh"), "run"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(p.name for p in out.iterdir())
    names = [f"{t}-{p}" for t in ("dehaze", "derain", "lowlight") for p in ("hdm", "hdm-s")]
    assert files == sorted([*(f"{n}.safetensors" for n in names), "train.log",
                            "train_summary.json"])  # 8 files: what one lease may bring back
    summary = json.loads((out / "train_summary.json").read_text())
    for name in names:
        model = summary["models"][name]
        assert model["history"] and model["history"][-1]["steps_per_s"] > 0
        task, preset = name.split("-", 1)
        loaded = hdm.load_checkpoint(out / f"{name}.safetensors")
        assert (loaded.task, loaded.preset) == (task, preset)
        assert loaded.model.config.output == RECIPES[task]["output"]
    log = (out / "train.log").read_text()
    assert "== GPU tests" in log and "===== lowlight-hdm-s" in log
