"""Reading and writing HDM weights: our own format and the official release's.

Our format is a safetensors file whose metadata holds the architecture, preset, task and
metrics, so a file alone rebuilds its model; a ``torch.save`` dict with the same fields is read
too (``weights_only``, never arbitrary pickle). The release's ``.pk`` file is mapped onto our
module names by a pure key-remapping function and then loaded strictly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hdm.errors import CheckpointError, PresetMismatchError
from hdm.model import HDM, TASKS, HDMConfig
from hdm.presets import PRESETS, preset_name

__all__ = [
    "Checkpoint",
    "load_checkpoint",
    "load_official_checkpoint",
    "official_to_ours",
    "save_checkpoint",
]

FORMAT = "hdm-stream/1"

# Release module prefix -> ours (first match wins; everything else keeps its name).
_RENAMES = (
    ("FAB.", "body."),
    ("dcn_block.dcn.conv_offset_mask.", "deform.offset_mask."),
    ("dcn_block.dcn.", "deform."),
    ("drconv_phy.", "region."),
    ("output.", "head."),
)
# Present in the release's state_dict but never used by its forward pass.
_UNUSED = ("drconv.", "mix3.", "mix4.")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the ready model (eval mode) and what the file says about it."""

    model: HDM
    preset: str
    task: str | None
    metrics: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    model: HDM, path: str | Path, *, task: str | None, metrics: dict[str, Any] | None = None
) -> None:
    """Write ``model`` as a safetensors file that :func:`load_checkpoint` can rebuild alone."""
    if task is not None and task not in TASKS:
        raise CheckpointError(f"task must be one of {TASKS}, got {task!r}")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "preset": preset_name(model.config),
        "config": json.dumps(model.config.to_dict()),
        "task": task or "",
        "metrics": json.dumps(metrics or {}),
    }
    save_file(state, str(path), metadata=metadata)


def load_checkpoint(path: str | Path, *, preset: str | None = None) -> Checkpoint:
    """Rebuild the model stored at ``path`` (safetensors, or a weights-only torch file).

    ``preset``, when given, must agree with the file; a mismatch raises PresetMismatchError.
    """
    path = _existing(path)
    if path.suffix == ".safetensors":
        state, meta = _read_safetensors(path)
    else:
        raw = _torch_load(path)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or "state_dict" not in raw:
            raise CheckpointError(
                f"{path} is not an hdm-stream checkpoint; for the release's weights use "
                "hdm.load_official_checkpoint"
            )
        state = raw["state_dict"]
        meta = {k: raw.get(k, "") for k in ("preset", "config", "task", "metrics")}
    try:
        config = HDMConfig.from_dict(json.loads(meta["config"]))
        metrics = json.loads(meta.get("metrics") or "{}")
    except (KeyError, json.JSONDecodeError, TypeError) as error:
        raise CheckpointError(f"{path} has unreadable metadata ({error})") from error
    stored_preset = meta.get("preset") or preset_name(config)
    _check_preset(path, preset, config)
    model = HDM(config)
    _load_strict(model, state, path)
    return Checkpoint(model.eval(), stored_preset, meta.get("task") or None, metrics)


def official_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the release's state_dict (``module.``-prefixed, with unused modules) onto ours."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith(_UNUSED):
            continue
        for old, new in _RENAMES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        mapped[key] = value
    return mapped


def load_official_checkpoint(path: str | Path, *, preset: str | None = None) -> HDM:
    """Load the release's checkpoint (``torch.save({'model': state_dict, ...})``) strictly.

    The architecture is read from the weights' shapes; a conflicting ``preset`` is refused.
    A missing DCN bias (forks that had none) loads as zeros, which is what those forks computed.
    """
    path = _existing(path)
    raw = _torch_load(path)
    state = raw.get("model") if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} has no 'model' state_dict; is it the release's .pk file?")
    mapped = official_to_ours(state)
    config = _infer_config(mapped, path)
    _check_preset(path, preset, config)
    model = HDM(config)
    if "deform.bias" not in mapped and "deform.weight" in mapped:
        mapped["deform.bias"] = torch.zeros(config.width)
    _load_strict(model, mapped, path)
    return model.eval()


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        state = load_file(str(path))
        with open(path, "rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_size))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from error
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not an hdm-stream checkpoint")
    return state, meta


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    # The weights-only unpickler meets garbage with whatever its parser hits first (KeyError,
    # IndexError, ValueError, ...), so every failure to read counts as "not a checkpoint".
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise CheckpointError(
            f"{path} cannot be read as a weights-only torch checkpoint ({first_line}); "
            "it may be corrupt or contain arbitrary Python objects"
        ) from error


def _infer_config(state: dict[str, torch.Tensor], path: Path) -> HDMConfig:
    try:
        width = state["conv0.0.weight"].shape[0]
        regions_squared = state["region.conv_kernel.1.weight"].shape[0]
    except KeyError as error:
        raise CheckpointError(f"{path} lacks {error}; it is not an HDM checkpoint") from error
    groups = {int(m[1]) for k in state if (m := re.match(r"body\.(\d+)\.", k))}
    blocks = {int(m[1]) for k in state if (m := re.match(r"body\.0\.gp\.(\d+)\.conv1\.", k))}
    regions = round(regions_squared**0.5)
    return HDMConfig(width=width, groups=len(groups), blocks=len(blocks), regions=regions)


def _check_preset(path: Path, preset: str | None, config: HDMConfig) -> None:
    if preset is None:
        return
    wanted = PRESETS.get(preset)
    if wanted is None:
        raise CheckpointError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    same_shape = (wanted.width, wanted.groups, wanted.blocks, wanted.regions) == (
        config.width,
        config.groups,
        config.blocks,
        config.regions,
    )
    if not same_shape:
        raise PresetMismatchError(
            f"{path} holds weights for {preset_name(config)!r} "
            f"(width {config.width}, {config.groups}×{config.blocks} blocks), not {preset!r}; "
            f"ask for preset {preset_name(config)!r} or leave the preset out"
        )


def _load_strict(model: HDM, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        k for k in set(expected) & set(state) if expected[k].shape != state[k].shape
    )
    problems = [
        f"{len(names)} {what} (first: {names[0]})"
        for what, names in (
            ("missing tensors", missing),
            ("unexpected tensors", unexpected),
            ("tensors of the wrong shape", wrong_shape),
        )
        if names
    ]
    if problems:
        raise CheckpointError(f"{path} does not fit the model: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
