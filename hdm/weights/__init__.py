"""Trained weights shipped inside the package, described by data.

Each member of :class:`Weights` names a file in this folder and everything a user needs to
trust it: preset, task, mask mode, data, steps, command, measured metrics and licence. The
loader checks the file's SHA-256 before use.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hdm.errors import CheckpointError, ConfigError

__all__ = ["DEFAULT_WEIGHTS", "Weights", "WeightsInfo", "default_weights"]

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class WeightsInfo:
    """Description of one shipped checkpoint; ``metrics`` is {set: {metric: value}}."""

    file: str
    sha256: str
    preset: str
    task: str
    mask_mode: str
    parameters: int
    training_data: str
    steps: int
    command: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    input: str = "RGB, float in [0, 1], any size"
    licence: str = "weights: MIT like the code; trained on research-only data (see model card)"

    @property
    def path(self) -> Path:
        return FOLDER / self.file

    def verified_path(self) -> Path:
        """The file, after checking that it exists and has the recorded SHA-256."""
        if not self.path.is_file():
            raise CheckpointError(f"shipped weights missing: {self.path}; reinstall hdm-stream")
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise CheckpointError(f"{self.path} is corrupt (sha256 {digest[:12]}…); reinstall")
        return self.path


class Weights(enum.Enum):
    """Shipped checkpoints, named by task and training data."""


DEFAULT_WEIGHTS: dict[str, Weights] = {}


def default_weights(task: str | None) -> WeightsInfo:
    """The shipped weights for ``task``; ConfigError when none ship for it."""
    if task is None:
        raise ConfigError("weights='default' needs a task (dehaze, derain or lowlight)")
    member = DEFAULT_WEIGHTS.get(task)
    if member is None:
        raise ConfigError(
            f"no trained weights for {task!r} ship with this version; pass a checkpoint path, "
            "or use --model dcp for the classical enhancer"
        )
    info: WeightsInfo = member.value
    return info
