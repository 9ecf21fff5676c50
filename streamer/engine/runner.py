"""The model on its device behind one of three backends; tensors in, tensors out.

``eager`` runs the module as is (the CPU default). ``compile`` wraps it in torch.compile with
bf16 autocast (the CUDA default); ``compile_mode`` picks torch.compile's mode
(``reduce-overhead`` replays CUDA graphs). ``tensorrt`` compiles it with torch-tensorrt when that
is importable, caching engines on disk keyed by model hash, precision, shape and GPU. A backend
that cannot load falls back with one log line that says why. Compiling backends compile the DCP
mask estimate too.

The runner owns what must not be shared between threads (compiled code specialised to one batch
size, CUDA-graph outputs): one thread drives it, the server's engine worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import torch
from torch import nn

import hdm
from hdm import dcp
from hdm.dcp import MaskMode
from hdm.fusion import fuse_head
from hdm.model import HDM, pad_input
from streamer.engine.settings import PRECISIONS, EngineSettings, Optimisations
from streamer.engine.temporal import (
    Estimate,
    MaskSmoother,
    OutputStabiliser,
    SmoothingParams,
    StabiliserParams,
    TemporalState,
)
from streamer.errors import EngineError

__all__ = ["ModelRunner", "TensorRTRunner", "model_hash", "resolve_device"]

log = logging.getLogger(__name__)


class ModelRunner:
    """Enhances B×3×H×W float batches on the device, each frame with its stream's state."""

    def __init__(
        self,
        model: nn.Module,
        runner: nn.Module,
        device: torch.device,
        dtype: torch.dtype,
        backend: str,
        *,
        strength: float = 1.0,
        smoothing: SmoothingParams = SmoothingParams(),
        stabiliser: StabiliserParams = StabiliserParams(),
        estimate: Estimate = dcp.estimate,
        channels_last: bool = False,
    ) -> None:
        self.model = model
        self.runner = runner
        self.device = device
        self.dtype = dtype
        self.backend = backend
        self.strength = strength
        self.channels_last = channels_last
        self.smoother = (
            MaskSmoother(regions=model.config.regions, mode=model.config.mask_mode,
                         lowlight=model.config.lowlight_masks, params=smoothing,
                         estimate=estimate)
            if isinstance(model, HDM) else None
        )
        self.stabiliser = OutputStabiliser(stabiliser)
        self.batch_size = 1  # what compiled code is specialised to; set by the warm-up
        self.description = f"{_model_name(model)} on {device} ({backend}, {_dtype_name(dtype)})"

    @classmethod
    def build(
        cls,
        settings: EngineSettings,
        smoothing: SmoothingParams = SmoothingParams(),
        stabiliser: StabiliserParams = StabiliserParams(),
        optimisations: Optimisations = Optimisations(),
    ) -> ModelRunner:
        device = resolve_device(settings.device)
        dtype = PRECISIONS[settings.precision] or (
            torch.bfloat16 if device.type == "cuda" else torch.float32
        )
        if device.type == "cpu" and dtype is torch.float16:
            raise EngineError("fp16 needs a GPU; use --precision fp32 or bf16 on the CPU")
        try:
            model = hdm.resolve(settings.task, settings.model, settings.weights,
                                mask_mode=_mask_mode(settings))
        except hdm.HDMError as error:
            raise EngineError(str(error)) from error
        model = model.eval().requires_grad_(False).to(device)
        if isinstance(model, HDM) and optimisations.fuse_head:
            fuse_head(model)  # exact, 39% fewer multiply-adds
        backend = _resolve_backend(settings.backend, device)
        if optimisations.channels_last:
            # torch's stubs lack Module.to's memory_format overload
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        runner: nn.Module = model
        estimate: Estimate = dcp.estimate
        if backend == "tensorrt":
            runner = TensorRTRunner(model, dtype, Path(settings.cache_dir).expanduser())
        elif backend == "compile":
            runner = cast(nn.Module, torch.compile(model, dynamic=False,
                                                   mode=settings.compile_mode))
        if backend != "eager" and optimisations.compile_masks:
            # Never CUDA graphs here: the states keep these outputs across calls, and a graph
            # replay would overwrite them.
            estimate = cast(Estimate, torch.compile(dcp.estimate, dynamic=False))
        return cls(model, runner, device, dtype, backend, strength=settings.strength,
                   smoothing=smoothing, stabiliser=stabiliser, estimate=estimate,
                   channels_last=optimisations.channels_last)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, states: Sequence[TemporalState]) -> torch.Tensor:
        """Enhanced B×3×H×W float in [0, 1] on the device; frame i steadied with states[i].

        Compiled backends are specialised to the warm-up batch size; a shorter batch (the end
        of a file, a batch cut short by its deadline) is padded with copies of its last frame
        rather than compiled again, and the copies are neither returned nor smoothed over.
        """
        count = x.shape[0]
        if self.backend != "eager" and count < self.batch_size:
            x = torch.cat([x, x[-1:].expand(self.batch_size - count, -1, -1, -1)])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            if self.smoother is not None:
                masks = self.smoother(pad_input(x), [s.masks for s in states])
                if x.shape[0] > count:  # padding repeats the last real frame's masks
                    masks = torch.cat([masks, masks[-1:].expand(x.shape[0] - count, -1, -1, -1)])
                out = self.runner(x, masks)
            else:
                out = self.runner(x)
        # Out of place: with CUDA graphs ``out`` is a buffer the next replay overwrites.
        out = out[:count].float().clamp(0.0, 1.0)
        if self.strength < 1:
            out = torch.lerp(x[:count].float(), out, self.strength)
        return self.stabiliser(x[:count], out, [s.output for s in states])

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.dtype is torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def _mask_mode(settings: EngineSettings) -> MaskMode | None:
    """Soft masks for untrained networks (video needs no bin edges); a checkpoint keeps the mode
    it was trained with; the classical enhancer has none."""
    return "soft" if settings.weights == "random" and settings.model != "dcp" else None


def _resolve_backend(requested: str, device: torch.device) -> str:
    """The backend to use; one log line for each fallback, saying why."""
    if requested == "auto":
        return "compile" if device.type == "cuda" else "eager"
    if requested == "tensorrt" and device.type != "cuda":
        log.warning("tensorrt backend needs a CUDA GPU; using eager on %s", device)
        return "eager"
    if requested == "tensorrt" and importlib.util.find_spec("torch_tensorrt") is None:
        log.warning("tensorrt backend unavailable (torch-tensorrt is not installed; "
                    "pip install 'hdm-stream[tensorrt]'); using torch.compile")
        return "compile"
    return requested


def resolve_device(name: str) -> torch.device:
    """``auto`` (the GPU when there is one), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise EngineError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked for but no CUDA GPU is available")
    return device


def _model_name(model: nn.Module) -> str:
    if isinstance(model, HDM):
        return hdm.presets.preset_name(model.config)
    return "dcp"


def _dtype_name(dtype: torch.dtype) -> str:
    return next(name for name, value in PRECISIONS.items() if value is dtype)


def model_hash(model: nn.Module) -> str:
    """Content hash of a model's weights and architecture, for engine caches."""
    digest = hashlib.sha256(repr(getattr(model, "config", type(model).__name__)).encode())
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class TensorRTRunner(nn.Module):
    """Runs an HDM through torch-tensorrt engines, one per input shape, cached on disk.

    The cache key holds the weights' hash, the precision, the shape and the GPU's name, so an
    engine is never reused for anything it was not built for. Masks are an input: the DCP
    statistics (top-k, smoothing) stay outside the engine.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype, cache_dir: Path) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.cache_dir = cache_dir
        self.weights_hash = model_hash(model)
        self._engines: dict[tuple[int, ...], nn.Module] = {}

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        engine = self._engines.get(tuple(x.shape))
        if engine is None:
            engine = self._load_or_build(x, masks)
            self._engines[tuple(x.shape)] = engine
        return engine(x, masks) if masks is not None else engine(x)

    def _load_or_build(self, x: torch.Tensor, masks: torch.Tensor | None) -> nn.Module:
        import torch_tensorrt  # optional dependency, checked by _resolve_backend

        gpu = torch.cuda.get_device_name(x.device).replace(" ", "_")
        shape = "x".join(str(d) for d in x.shape)
        path = self.cache_dir / f"{self.weights_hash}-{_dtype_name(self.dtype)}-{shape}-{gpu}.ep"
        inputs = [x] if masks is None else [x, masks]
        if path.is_file():
            log.info("loading TensorRT engine %s", path)
            return torch_tensorrt.load(str(path)).module()
        log.warning("building TensorRT engine for %s (cached at %s)", shape, path)
        engine = torch_tensorrt.compile(
            self.model, ir="dynamo", inputs=inputs, enabled_precisions={self.dtype}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        torch_tensorrt.save(engine, str(path), inputs=inputs)
        return engine
