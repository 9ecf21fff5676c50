"""Model builders: one function per preset, and ``build_model`` as a lookup over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from torch import nn

from hdm.checkpoint import load_checkpoint
from hdm.classical import ClassicalEnhancer
from hdm.dcp import MaskMode
from hdm.errors import ConfigError
from hdm.model import HDM, TASKS
from hdm.presets import PRESETS
from hdm.weights import default_weights

__all__ = ["build_model", "hdm", "hdm_s", "list_models"]


def _build(
    preset: str, *, task: str | None, weights: str | Path | None, mask_mode: MaskMode
) -> HDM:
    if task is not None and task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    if weights is None:
        config = replace(PRESETS[preset], mask_mode=mask_mode, lowlight_masks=task == "lowlight")
        return HDM(config)
    if weights == "default":
        info = default_weights(task)
        if info.preset != preset:
            raise ConfigError(
                f"the shipped {task} weights are for {info.preset!r}, not {preset!r}; "
                f"build {info.preset!r} or pass a checkpoint path"
            )
        weights = info.verified_path()
    checkpoint = load_checkpoint(weights, preset=preset)
    if task is not None and checkpoint.task not in (None, task):
        raise ConfigError(
            f"{weights} was trained for {checkpoint.task!r}, not {task!r}; pick matching weights"
        )
    return checkpoint.model


def hdm(
    *, task: str | None = None, weights: str | Path | None = None, mask_mode: MaskMode = "hard"
) -> HDM:
    """The paper's HDM: width 64, 3 groups × 9 attention blocks, 5 DCP regions."""
    return _build("hdm", task=task, weights=weights, mask_mode=mask_mode)


def hdm_s(
    *, task: str | None = None, weights: str | Path | None = None, mask_mode: MaskMode = "hard"
) -> HDM:
    """HDM-S for real time: width 32, 2 groups × 3 attention blocks, 5 DCP regions."""
    return _build("hdm-s", task=task, weights=weights, mask_mode=mask_mode)


def _dcp(
    *, task: str | None = None, weights: str | Path | None = None, mask_mode: MaskMode = "hard"
) -> nn.Module:
    if weights is not None:
        raise ConfigError("the classical 'dcp' enhancer has no weights; drop the weights option")
    return ClassicalEnhancer(task or "dehaze")


_BUILDERS: dict[str, Callable[..., nn.Module]] = {"hdm": hdm, "hdm-s": hdm_s, "dcp": _dcp}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(_BUILDERS)


def build_model(
    name: str = "hdm",
    *,
    task: str | None = None,
    weights: str | Path | None = None,
    mask_mode: MaskMode = "hard",
) -> nn.Module:
    """Build a model by name (``hdm``, ``hdm-s``, or ``dcp`` for the classical enhancer).

    ``weights``: None for random initialisation, a checkpoint path, or "default" for the weights
    shipped for ``task``. The result takes B×3×H×W float in [0, 1] and returns the same shape.
    """
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; choose one of {list_models()}")
    return _BUILDERS[name](task=task, weights=weights, mask_mode=mask_mode)
