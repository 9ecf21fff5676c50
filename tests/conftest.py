"""Shared fixtures: seeded randomness, the root logger as each test found it, and the team's
evaluation data when it is present."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """The CLI's ``main`` sets up the root logger on the stderr of its moment (pytest's capture
    of that test); put it back, so that later tests' log lines meet no closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip: it is the team's evaluation data, absent on a user's machine."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA}")
    return SHARED_DATA
