"""Pipeline fixtures: a fast real engine (the classical enhancer on the CPU), and the same
engine behind a recorder of what it is given."""

from __future__ import annotations

import pytest

from streamer.engine import Engine, EngineSettings
from tests.streamer.engines import RecordingEngine


@pytest.fixture(scope="session")
def classical_engine() -> Engine:
    return Engine.build(EngineSettings(model="dcp", task="dehaze", device="cpu"))


@pytest.fixture
def recording_engine(classical_engine: Engine) -> RecordingEngine:
    """The session's classical engine with a fresh record of the batches submitted to it
    (nothing of the shared engine is patched, so a failing test cannot leave it changed)."""
    return RecordingEngine(classical_engine)
