"""The code passes the project's linter (ruff) and type checker (mypy), set in pyproject.toml:
the packages, the benchmarks and these tests."""

from __future__ import annotations

import ast
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


def _streamer_imports() -> dict[str, set[str]]:
    """Each streamer module's imports of other streamer modules, wherever they stand (a
    deferred import inside a function is still an arrow of the graph). A package is a node of
    its own: ``from streamer.engine import Engine`` runs engine/__init__.py, whose imports are
    its arrows."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "streamer").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                            else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_the_import_graph_has_no_cycle() -> None:
    """docs/architecture.md's rule: the arrows run one way."""
    graph = _streamer_imports()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for target in graph[name]:
                visit(target, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())
