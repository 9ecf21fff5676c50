"""The code passes the project's linter (ruff) and type checker (mypy), set in pyproject.toml:
the packages, the benchmarks and these tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_checks_every_folder_of_python_code() -> None:
    """A new package (or the tests) cannot drop out of the type check unnoticed."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert {"hdm", "streamer", "tests", "benchmarks"} <= folders
    assert folders <= set(config["tool"]["mypy"]["files"])


def test_mypy_finds_nothing() -> None:
    """Type hints are checked (settings in pyproject.toml), not decoration."""
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    result = subprocess.run([mypy], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
