"""A real engine that records what it is given, for tests that check what reached the engine
(which streams shared a batch, how a session's frames travelled) without patching anything."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from streamer.engine import Engine, EngineBatch, PendingBatch, TemporalState
from streamer.frames import Layout

__all__ = ["RecordingEngine", "Submitted"]


@dataclass(frozen=True)
class Submitted:
    """One call of :meth:`Engine.submit`: the batch and the temporal state of each frame."""

    batch: EngineBatch
    states: tuple[TemporalState, ...]

    @property
    def streams(self) -> int:
        """How many streams' frames the batch held (each stream has its own state)."""
        return len({id(state) for state in self.states})


class RecordingEngine(Engine):
    """Runs as ``engine`` does (its runner, transfers and settings: the same compiled model)
    and records every batch submitted, warm-ups included."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.runner, engine.transfer, engine.settings)
        self.inner = engine
        self.submitted: list[Submitted] = []
        self._lock = threading.Lock()  # the engine worker submits; the test reads

    def submit(self, batch: EngineBatch, states: Sequence[TemporalState]) -> PendingBatch:
        with self._lock:
            self.submitted.append(Submitted(batch, tuple(states)))
        return self.inner.submit(batch, states)

    def batches_of(self, state: TemporalState) -> list[Submitted]:
        """The batches that held a frame of the stream whose state is ``state`` (a session's,
        so not the warm-ups')."""
        with self._lock:
            return [s for s in self.submitted if any(t is state for t in s.states)]

    def travelled(self, state: TemporalState) -> set[tuple[Layout, Layout]]:
        """(layout in, layout out) of the batches that held that stream's frames."""
        return {(s.batch.layout, s.batch.result_layout) for s in self.batches_of(state)}
