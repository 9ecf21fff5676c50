"""What the engine runs and how: typed settings, validated when made (so a YAML key or a flag
is refused at load, with its name), and the switchable optimisations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from streamer.errors import ConfigError

__all__ = [
    "BACKENDS", "COLOUR", "COMPILE_MODES", "MODELS", "PRECISIONS", "TASKS", "Backend", "Colour",
    "CompileMode", "EngineSettings", "ModelName", "Optimisations", "Precision", "Task",
]

Backend = Literal["auto", "eager", "compile", "tensorrt"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
Colour = Literal["auto", "device", "host"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
ModelName = Literal["auto", "hdm", "hdm-s", "dcp"]
Task = Literal["dehaze", "derain", "lowlight"]

BACKENDS: tuple[str, ...] = get_args(Backend)
COMPILE_MODES: tuple[str, ...] = get_args(CompileMode)
COLOUR: tuple[str, ...] = get_args(Colour)
MODELS: tuple[str, ...] = get_args(ModelName)
TASKS: tuple[str, ...] = get_args(Task)
PRECISIONS: dict[str, torch.dtype | None] = {"auto": None, "fp32": torch.float32,
                                             "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class EngineSettings:
    """What to run and how (the YAML ``model:`` section).

    ``weights``: ``default`` (shipped), ``random`` or a checkpoint path (see hdm.builders).
    ``strength`` blends the enhanced frame with its input (1: fully enhanced). Frames larger
    than ``max_megapixels`` are refused up front: HDM keeps full-resolution activations (hdm-s at
    8000×8000 took 11 GB of memory and did not finish on the CPU); 36 MP covers 8K UHD.
    """

    model: ModelName = "auto"
    task: Task = "dehaze"
    weights: str = "default"
    device: str = "auto"
    backend: Backend = "auto"
    compile_mode: CompileMode = "default"
    precision: Precision = "auto"
    colour: Colour = "auto"
    strength: float = 1.0
    max_megapixels: float = 36.0
    cache_dir: str = "~/.cache/hdm-stream/tensorrt"

    def __post_init__(self) -> None:
        choices = {"model": MODELS, "task": TASKS, "backend": BACKENDS,
                   "compile_mode": COMPILE_MODES, "precision": tuple(PRECISIONS),
                   "colour": COLOUR}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {list(allowed)}, got "
                                  f"{getattr(self, name)!r}")
        if self.max_megapixels <= 0:
            raise ConfigError(f"max_megapixels must be > 0, got {self.max_megapixels}")
        if not 0 <= self.strength <= 1:
            raise ConfigError(f"strength must be in [0, 1] (1: fully enhanced, 0: the input), "
                              f"got {self.strength}")
        if not self.weights:
            raise ConfigError("weights cannot be empty; use default, random or a path")


@dataclass(frozen=True)
class Optimisations:
    """The optimisations the engine applies, each switchable so that benchmarks can measure it
    on its own (benchmarks/bench_matrix.py ablations) and the quality guard can check it. All on
    by default, on every device: on the 2-core CPU, channels_last halved hdm-s's time at 360p and
    the fused head took a further 20% off hdm's. None changes results beyond float rounding.

    Args:
        fuse_head: the exact 13×13 fusion of the head's three 5×5 convs (hdm.fusion).
        channels_last: NHWC activations end to end (what cuDNN's and Triton's convs prefer).
        compile_masks: torch.compile the DCP estimate too (compiling backends only).
    """

    fuse_head: bool = True
    channels_last: bool = True
    compile_masks: bool = True
