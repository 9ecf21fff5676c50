"""Pipeline fixtures: a fast real engine (the classical enhancer on the CPU)."""

from __future__ import annotations

import pytest

from streamer.engine import Engine, EngineSettings


@pytest.fixture(scope="session")
def classical_engine() -> Engine:
    return Engine.build(EngineSettings(model="dcp", task="dehaze", device="cpu"))
