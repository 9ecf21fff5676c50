"""HDM: hierarchical dynamics with spatial adjacency for image enhancement, in plain PyTorch."""

from hdm.builders import WeightsArg, build_model, hdm, hdm_s, list_models, resolve
from hdm.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_official_checkpoint,
    save_checkpoint,
)
from hdm.classical import ClassicalEnhancer
from hdm.dcp import DCPParams, DCPStats, dcp_masks
from hdm.errors import (
    CheckpointError,
    ConfigError,
    HDMError,
    InputError,
    ModelConfigError,
    PresetMismatchError,
)
from hdm.model import HDM, TASKS, HDMConfig
from hdm.presets import PRESETS
from hdm.weights import Weights

__all__ = [
    "HDM",
    "PRESETS",
    "TASKS",
    "Weights",
    "WeightsArg",
    "Checkpoint",
    "CheckpointError",
    "ClassicalEnhancer",
    "ConfigError",
    "DCPParams",
    "DCPStats",
    "HDMConfig",
    "HDMError",
    "InputError",
    "ModelConfigError",
    "PresetMismatchError",
    "build_model",
    "dcp_masks",
    "hdm",
    "hdm_s",
    "list_models",
    "load_checkpoint",
    "load_official_checkpoint",
    "resolve",
    "save_checkpoint",
]
