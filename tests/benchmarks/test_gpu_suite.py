"""A dry run of the GPU measuring lease's script on the CPU (every step, on tiny sizes), so that
it cannot rot between leases: each step ends with exit 0 and leaves its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "../shared/data"


@pytest.mark.slow
def test_gpu_suite_script_dry_run(tmp_path: Path) -> None:
    if not DATA.is_dir():
        pytest.skip(f"needs {DATA} for the quality guard step")
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "PLAN": "cpu",
           "SMOKE": "1", "DATA": str(DATA)}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "run"],
                            env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (out / "summary.txt").read_text()
    for step in ("gpu_tests", "bench_matrix", "bench_pipeline", "quality_guard"):
        assert f"== {step}: exit 0" in summary or (
            step == "gpu_tests" and f"== {step}: exit 5" in summary), summary  # 5: all skipped
    for name in ("bench_matrix", "bench_pipeline", "quality_guard"):
        assert json.loads((out / f"{name}.json").read_text())


@pytest.mark.slow
def test_gpu_scale_lease_dry_run(tmp_path: Path, shared_data: Path) -> None:
    """Lease 3 (``scale``): the reduced size at 1080p/4K, many cameras, hdm segments
    (bench_segments enhances the shared fog clip: skipped where ../shared/data is absent)."""
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "SMOKE": "1",
           "DEVICE": "cpu"}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "scale"],
                            env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (out / "summary.txt").read_text()
    for name in ("bench_realtime", "bench_streams", "bench_segments"):
        assert f"== {name}: exit 0" in summary, summary
        assert json.loads((out / f"{name}.json").read_text())
