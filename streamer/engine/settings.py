"""What the engine runs and how: typed settings, validated when made (so a YAML key or a flag
is refused at load, with its name), and the switchable optimisations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

import torch

from hdm.upsample import FIT_WINDOW_BY_TASK, FITS, Fit
from streamer.errors import ConfigError

__all__ = [
    "BACKENDS", "COLOUR", "COMPILE_MODES", "MODELS", "PRECISIONS", "TASKS", "Backend", "Colour",
    "CompileMode", "EngineSettings", "FIT_BY_TASK", "InferenceSize", "MIN_INFERENCE_SIZE",
    "ModelName", "Optimisations", "Precision", "TASK_CHOICES", "Task", "TaskChoice",
    "check_fit_window", "parse_fit_window", "parse_inference_size", "resolve_fit_window",
    "size_for",
]

Backend = Literal["auto", "eager", "compile", "tensorrt", "openvino", "onnxruntime"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
Colour = Literal["auto", "device", "host"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
ModelName = Literal["auto", "hdm", "hdm-s", "dcp"]
Task = Literal["dehaze", "derain", "lowlight"]
TaskChoice = Literal["auto", "dehaze", "derain", "lowlight"]
"""A setting's task: one of the three, or ``auto``: chosen per scene (engine/scene.py)."""

BACKENDS: tuple[str, ...] = get_args(Backend)
COMPILE_MODES: tuple[str, ...] = get_args(CompileMode)
COLOUR: tuple[str, ...] = get_args(Colour)
MODELS: tuple[str, ...] = get_args(ModelName)
TASKS: tuple[str, ...] = get_args(Task)
TASK_CHOICES: tuple[str, ...] = get_args(TaskChoice)
PRECISIONS: dict[str, torch.dtype | None] = {"auto": None, "fp32": torch.float32,
                                             "bf16": torch.bfloat16, "fp16": torch.float16}
InferenceSize = int | Literal["full", "auto"]
MIN_INFERENCE_SIZE = 32
FIT_BY_TASK: dict[str, Fit] = {"dehaze": "channel", "derain": "colour", "lowlight": "channel"}
"""The fit ``auto`` uses (see hdm/upsample.py and the README's real-time table): haze is a
per-channel affine transform, and so (near enough: 0.04 dB on LOL) is a low-light gain;
rain gains from the 3×3 colour mix (+0.17 dB on Rain100L at 1/4 scale), where speed matters less."""


def parse_inference_size(value: object, key: str = "inference_size") -> int | str:
    """One size for every task, or one per task (see :func:`size_for`), in a canonical form
    (a mapping, ``derain=240,lowlight=full`` from a flag, becomes
    ``dehaze=auto,derain=240,lowlight=full``; the same size for all becomes that size);
    ConfigError naming ``key`` otherwise."""
    if isinstance(value, str) and "=" in value:
        pairs = [(name.strip(), size.strip())
                 for name, _, size in (item.partition("=") for item in value.split(","))]
        names = [name for name, _ in pairs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"{key}: {repeated[0]} given twice")
        value = dict(pairs)
    if not isinstance(value, dict):
        return _parse_one_size(value, key)
    unknown = sorted(str(name) for name in value if name not in TASKS)
    if unknown:
        raise ConfigError(f"{key}: no task {unknown[0]!r}; per task it takes "
                          f"{', '.join(TASKS)}, e.g. derain=240")
    sizes = {task: _parse_one_size(value.get(task, "auto"), f"{key}.{task}") for task in TASKS}
    if len(set(sizes.values())) == 1:
        return sizes[TASKS[0]]
    return ",".join(f"{task}={size}" for task, size in sizes.items())


def size_for(inference_size: object, task: str) -> InferenceSize:
    """The size one task runs at, from any form :func:`parse_inference_size` takes: per task
    because what a task needs to see differs (rain streaks are a pixel or two wide; haze and
    darkness are smooth). The settings keep every task's, so that a task changed later (a flag
    over a YAML, a serve stream over the shared model) still finds its own."""
    canonical = parse_inference_size(inference_size)
    if isinstance(canonical, str) and "=" in canonical:
        sizes = dict(item.split("=") for item in canonical.split(","))
        return _parse_one_size(sizes[task])
    return _parse_one_size(canonical)


def _parse_one_size(value: object, key: str = "inference_size") -> InferenceSize:
    """``full``, ``auto`` or a shorter side in pixels (an int, or a string of digits from a
    flag); ConfigError naming ``key`` otherwise."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value in ("full", "auto"):
        return "full" if value == "full" else "auto"
    if isinstance(value, int) and not isinstance(value, bool):
        if value < MIN_INFERENCE_SIZE:
            raise ConfigError(f"{key} must be at least {MIN_INFERENCE_SIZE} pixels, got {value}")
        return value
    raise ConfigError(f"{key} must be full, auto, a shorter side in pixels or one per task "
                      f"(derain=240,lowlight=full), got {value!r}")


def parse_fit_window(value: float | str, key: str = "fit_window") -> float | str:
    """``auto``, or a fraction of the picture in [0, 0.5] (0: off; from a flag, a string of
    one or ``1/N``); ConfigError naming ``key`` otherwise."""
    if value == "auto":
        return value
    try:
        if isinstance(value, str) and value.startswith("1/"):
            window = 1 / float(value[2:])  # as the help writes it: 1/32
        else:
            window = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        window = float("nan")
    if isinstance(value, bool) or not 0 <= window <= 0.5:
        raise ConfigError(f"{key} must be auto or a fraction of the picture in [0, 0.5] "
                          f"(0: off), got {value!r}")
    return window


_NOT_FITTED = {"derain": "its streaks are in the input",
               "lowlight": "the noise the network removes would be multiplied back"}


def check_fit_window(task: str, window: float | str, key: str = "fit_window") -> None:
    """ConfigError naming ``key`` for a window given to a task that must not be fitted."""
    if window not in ("auto", 0.0) and task in _NOT_FITTED:
        raise ConfigError(f"{key} is for dehazing, not {task} ({_NOT_FITTED[task]}): drop it "
                          "or set 0")


def resolve_fit_window(task: str, window: float | str) -> float:
    """The wide-window fit a task's output gets (0: none; ``auto``: the task's). A value given
    with ``task: auto`` applies to the tasks that have one (dehazing)."""
    if task not in FIT_WINDOW_BY_TASK:
        return 0.0
    return FIT_WINDOW_BY_TASK[task] if window == "auto" else float(window)


@dataclass(frozen=True)
class EngineSettings:
    """What to run and how (the YAML ``model:`` section).

    ``weights``: ``default`` (shipped), ``random`` or a checkpoint path (see hdm.builders).
    ``inference_size``: ``full``, ``auto`` or the shorter side in pixels the network sees
    (see engine/resolution.py), or one of those per task (``derain=240``: the others
    ``auto``; :func:`size_for`); ``fit``: how a reduced-size result reaches the full frame
    (``channel``, ``colour`` or ``auto``: the task's, see hdm/upsample.py); ``fit_window``:
    the network's output replaced by its local affine fit on the input in windows whose radius
    is this fraction of the picture's longer side, which keeps what the input can explain and
    drops blotches (``auto``: the task's, 1/32 for dehazing; 0: off; dehazing only, see
    hdm.upsample.fit_to_input).
    ``strength`` blends the enhanced frame with its input (1: fully enhanced). Frames larger
    than ``max_megapixels`` are refused up front: HDM keeps full-resolution activations (hdm-s at
    8000×8000 took 11 GB of memory and did not finish on the CPU); 36 MP covers 8K UHD.
    """

    model: ModelName = "auto"
    task: TaskChoice = "auto"
    weights: str = "default"
    device: str = "auto"
    backend: Backend = "auto"
    compile_mode: CompileMode = "default"
    precision: Precision = "auto"
    colour: Colour = "auto"
    strength: float = 1.0
    max_megapixels: float = 36.0
    cache_dir: str = "~/.cache/hdm-stream"
    inference_size: int | str | dict[str, int | str] = "auto"  # a mapping: made canonical
    fit: str = "auto"
    fit_window: float | str = "auto"

    def __post_init__(self) -> None:
        choices = {"model": MODELS, "task": TASK_CHOICES, "backend": BACKENDS,
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
        object.__setattr__(self, "inference_size", parse_inference_size(self.inference_size))
        if self.fit not in ("auto", *FITS):
            raise ConfigError(f"fit must be one of {['auto', *FITS]}, got {self.fit!r}")
        object.__setattr__(self, "fit_window", parse_fit_window(self.fit_window))
        if self.fit_window not in ("auto", 0.0) and self.model == "dcp":
            raise ConfigError("fit_window is for HDM's output; the classical dehazer's "
                              "transmission is already guided by its input: drop it or set 0")
        check_fit_window(self.task, self.fit_window)

    def size_for(self, task: Task) -> InferenceSize:
        """The inference size ``task``'s engine runs at (:func:`size_for`)."""
        return size_for(self.inference_size, task)

    @property
    def resolved_fit(self) -> Fit:
        """The fit that carries a reduced-size result to the full frame (``auto``: the
        task's)."""
        if self.fit != "auto":
            return cast(Fit, self.fit)
        return FIT_BY_TASK.get(self.task, "channel")  # auto: each task's engine has its own

    @property
    def resolved_fit_window(self) -> float:
        """The wide-window fit of the output to the input: :func:`resolve_fit_window`."""
        return resolve_fit_window(self.task, self.fit_window)


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
