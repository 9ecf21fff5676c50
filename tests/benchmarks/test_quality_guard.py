"""The quality guard on the CPU: what the optimised engine changes costs no PSNR."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.quality_guard import CONFIGS, TOLERANCE_DB, guard

CPU = torch.device("cpu")


@pytest.mark.slow
def test_fused_head_and_channels_last_change_nothing(shared_data: Path) -> None:
    fp32 = [c for c in CONFIGS if c.name.startswith("fp32")]
    rows = guard(shared_data, CPU, limit=2, configs=fp32)
    assert {row["task"] for row in rows} == {"dehaze", "derain", "lowlight"}
    for row in rows:
        # The head fusion is exact and channels_last only reorders memory.
        assert abs(row["delta_db"]) < 1e-3  # type: ignore[arg-type]


@pytest.mark.slow
def test_bf16_stays_within_the_tolerance_on_low_light(shared_data: Path) -> None:
    """Low light is where bf16 costs most (dark inputs, large corrections): measured on the
    CPU -0.024 dB over LOL's 10 pairs, against -0.014 dB at worst on the rain sets. Per image
    the change is noise of about ±0.05 dB, so the guard holds for the whole set."""
    bf16 = [c for c in CONFIGS if c.name.startswith("bf16 eager")]
    (row,) = guard(shared_data, CPU, configs=bf16, tasks=("lowlight",))
    print(f"bf16 on {row['set']}: {row['delta_db']:+.4f} dB")
    assert abs(row["delta_db"]) <= TOLERANCE_DB  # type: ignore[arg-type]
