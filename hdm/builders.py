"""Model builders, and the one place that resolves (model, task, weights) to a module.

``build_model(name, task=..., weights=...)`` builds one preset; ``resolve`` adds the ``auto``
rules the engine, the Python API and ``hdm-stream eval`` share. Weights are named the same way
everywhere: ``"default"`` (the weights shipped for the task; the default, so a model is never
random by accident), a :class:`~hdm.weights.Weights` member, a checkpoint path, or ``"random"``
(untrained, for timing and training only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from torch import nn

from hdm.checkpoint import load_checkpoint
from hdm.classical import ClassicalEnhancer
from hdm.dcp import MaskMode
from hdm.errors import ModelConfigError
from hdm.model import HDM, TASKS
from hdm.presets import PRESETS
from hdm.weights import DEFAULT_WEIGHTS, Weights, WeightsInfo, default_weights

__all__ = ["WeightsArg", "build_model", "hdm", "hdm_s", "list_models", "resolve"]

log = logging.getLogger(__name__)

WeightsArg = str | Path | Weights
"""``"default"``, ``"random"``, a checkpoint path or a :class:`Weights` member."""


def _build(
    preset: str, *, task: str | None, weights: WeightsArg, mask_mode: MaskMode | None
) -> HDM:
    if task is not None and task not in TASKS:
        raise ModelConfigError(f"task must be one of {TASKS}, got {task!r}")
    if weights is None:
        raise ModelConfigError("weights=None is ambiguous; pass weights='random' for an untrained "
                               "model or 'default' for the shipped weights")
    if weights == "random":
        config = replace(PRESETS[preset], lowlight_masks=task == "lowlight")
        model = HDM(config)
    else:
        info: WeightsInfo | None = None
        if isinstance(weights, Weights):
            info = weights.value
            if task is not None and info.task != task:
                raise ModelConfigError(f"{weights.name} is for {info.task!r}, not {task!r}")
            task = info.task
        elif weights == "default":
            info = default_weights(task)
        path: str | Path
        if info is not None:
            if info.preset != preset:
                raise ModelConfigError(
                    f"the shipped {task} weights are for {info.preset!r}, not {preset!r}; "
                    f"build {info.preset!r}, pass a checkpoint path, or weights='random'"
                )
            path = info.verified_path()
        else:
            assert not isinstance(weights, Weights)
            path = weights
        checkpoint = load_checkpoint(path, preset=preset)
        if task is not None and checkpoint.task not in (None, task):
            raise ModelConfigError(
                f"{path} was trained for {checkpoint.task!r}, not {task!r}; pick matching "
                "weights"
            )
        model = checkpoint.model
    if mask_mode is not None:
        model.config = replace(model.config, mask_mode=mask_mode)
    return model


def hdm(
    *, task: str | None = None, weights: WeightsArg = "default",
    mask_mode: MaskMode | None = None,
) -> HDM:
    """The paper's HDM (see ``hdm.PRESETS["hdm"]``)."""
    return _build("hdm", task=task, weights=weights, mask_mode=mask_mode)


def hdm_s(
    *, task: str | None = None, weights: WeightsArg = "default",
    mask_mode: MaskMode | None = None,
) -> HDM:
    """HDM-S, the real-time preset (see ``hdm.PRESETS["hdm-s"]``)."""
    return _build("hdm-s", task=task, weights=weights, mask_mode=mask_mode)


def _dcp(
    *, task: str | None = None, weights: WeightsArg = "default",
    mask_mode: MaskMode | None = None,
) -> nn.Module:
    if weights not in ("default", "random"):
        raise ModelConfigError("the classical 'dcp' enhancer has no weights; drop the weights "
                               "option")
    if mask_mode is not None:
        raise ModelConfigError("the classical 'dcp' enhancer has no region masks; drop mask_mode")
    return ClassicalEnhancer(task or "dehaze")


_BUILDERS: dict[str, Callable[..., nn.Module]] = {"hdm": hdm, "hdm-s": hdm_s, "dcp": _dcp}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`: the HDM presets and ``dcp`` (classical)."""
    return sorted(_BUILDERS)


def build_model(
    name: str = "hdm",
    *,
    task: str | None = None,
    weights: WeightsArg = "default",
    mask_mode: MaskMode | None = None,
) -> nn.Module:
    """Build a model by name (``hdm``, ``hdm-s``, or ``dcp`` for the classical enhancer).

    ``weights``: see the module notes; ``"default"`` refuses, with the reason, a preset or task
    that has no shipped weights rather than returning an untrained network. ``mask_mode``
    overrides the checkpoint's (``soft`` suits video). The result takes B×3×H×W float in
    [0, 1] and returns the same shape.
    """
    if name not in _BUILDERS:
        raise ModelConfigError(f"unknown model {name!r}; choose one of {list_models()}")
    return _BUILDERS[name](task=task, weights=weights, mask_mode=mask_mode)


def resolve(
    task: str, model: str = "auto", weights: WeightsArg = "default",
    mask_mode: MaskMode | None = None,
) -> nn.Module:
    """The model to run for ``task``. ``model="auto"`` picks the preset of the weights: the
    shipped ones (every task ships weights: tests/hdm/test_weights.py), the checkpoint's own, or
    ``hdm`` with ``"random"``."""
    if task not in TASKS:
        raise ModelConfigError(f"task must be one of {TASKS}, got {task!r}")
    name = model
    if model == "auto":
        if isinstance(weights, Weights):
            name = weights.value.preset
        elif weights == "random":
            name = "hdm"
        elif weights == "default":
            name = DEFAULT_WEIGHTS[task].value.preset
        else:
            name = load_checkpoint(weights).preset
    if name == "dcp":
        return build_model("dcp", task=task, weights=weights)
    built = build_model(name, task=task, weights=weights, mask_mode=mask_mode)
    if weights == "random":
        log.warning("%s runs with random weights: output is for timing only", name)
    return built
