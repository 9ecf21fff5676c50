"""benchmarks/bench_inference_size.py on two pairs a set: the input's row is the pictures' own
PSNR, and a side no photo is larger than scores as full resolution, nothing rescaled."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import bench_inference_size
from hdm.data import find_pairs, read_rgb, to_tensor
from hdm.metrics import psnr


def test_the_table_holds_the_input_and_each_side(shared_data: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sizes.json"
    monkeypatch.setattr(sys, "argv", [
        "bench_inference_size", "--task", "derain", "--model", "dcp", "--sides",
        "96,1080,full", "--size", "160x96", "--limit", "2", "--data", str(shared_data),
        "--json", str(out)])
    bench_inference_size.main()
    report = json.loads(out.read_text())
    label, folder = "Rain100L (PReNet subset, 20)", "derain/rain100l_prenet_subset"
    pairs = find_pairs(shared_data / folder)[:2]
    direct = [psnr(to_tensor(read_rgb(rainy)).unsqueeze(0),
                   to_tensor(read_rgb(clean)).unsqueeze(0)).item() for rainy, clean in pairs]
    assert report["input"][label]["psnr"] == pytest.approx(sum(direct) / 2)
    rows = {row["side"]: row for row in report["rows"]}
    assert list(rows) == ["96", "1080", "full"]
    assert rows["1080"]["paired"] == rows["full"]["paired"]
    assert rows["96"]["paired"][label]["psnr"] != rows["full"]["paired"][label]["psnr"]
    assert all(row["ms"] > 0 for row in rows.values())
