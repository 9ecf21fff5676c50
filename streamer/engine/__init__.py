"""The inference engine: model runner, transfers and temporal state (see core.py)."""

from streamer.engine.core import Engine, EngineBatch
from streamer.engine.scene import engine_for_settings
from streamer.engine.settings import (
    BACKENDS,
    COLOUR,
    COMPILE_MODES,
    MODELS,
    PRECISIONS,
    TASKS,
    EngineSettings,
    Optimisations,
)
from streamer.engine.temporal import SmoothingParams, StabiliserParams, TemporalState
from streamer.engine.transfer import PendingBatch

__all__ = [
    "BACKENDS", "COLOUR", "COMPILE_MODES", "MODELS", "PRECISIONS", "TASKS", "Engine",
    "EngineBatch", "EngineSettings", "Optimisations", "PendingBatch", "SmoothingParams",
    "StabiliserParams", "TemporalState", "engine_for_settings",
]
