"""The inference engine: a model on a device behind one of three backends.

``eager`` runs the module as is (the CPU default). ``compile`` wraps it in torch.compile with
bf16 autocast (the CUDA default); ``compile_mode`` picks torch.compile's mode
(``reduce-overhead`` replays CUDA graphs). ``tensorrt`` compiles it with torch-tensorrt when that
is importable, caching engines on disk keyed by model hash, precision, shape and GPU. A backend
that cannot load falls back with one log line that says why. Compiling backends compile the DCP
mask estimate too.

Batches go in with :meth:`Engine.submit`, which returns at once on a GPU (copies on their own
stream, work queued), and come out with :meth:`PendingBatch.result`; the pipeline keeps one batch
in flight so the GPU computes while the CPU prepares the next. Frames may arrive as I420 planes
and leave as I420 planes (``colour="device"``): the colour conversion then runs on the device.

The engine owns the per-stream temporal state: mask smoothers, so HDM sees steadied DCP masks on
video, and output stabilisers; ``strength`` blends the enhanced frame with its input first.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

import hdm
from hdm import dcp
from hdm.fusion import fuse_head
from hdm.model import HDM, pad_input
from hdm.weights import DEFAULT_WEIGHTS
from streamer.colour import rgb_to_yuv420, yuv420_to_rgb
from streamer.errors import ConfigError, EngineError
from streamer.frames import ColorTags
from streamer.temporal import (
    MaskSmoother,
    OutputStabiliser,
    SmoothingParams,
    StabiliserParams,
)

__all__ = ["Engine", "EngineSettings", "Optimisations", "PendingBatch"]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "compile", "tensorrt")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
COLOUR = ("auto", "device", "host")
_HOST_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.uint16): torch.uint16}
PRECISIONS = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16,
              "fp16": torch.float16}


@dataclass(frozen=True)
class EngineSettings:
    """What to run and how; validated by :meth:`Engine.build` (``strength``, which blends the
    enhanced frame with its input, and ``max_megapixels`` when made). Frames larger than
    ``max_megapixels`` are refused up front: HDM keeps full-resolution activations (hdm-s at
    8000×8000 took 11 GB of memory and did not finish on the CPU); 36 MP covers 8K UHD."""

    model: str = "auto"
    task: str = "dehaze"
    weights: str = "default"
    device: str = "auto"
    backend: str = "auto"
    compile_mode: str = "default"
    precision: str = "auto"
    colour: str = "auto"
    strength: float = 1.0
    max_megapixels: float = 36.0
    cache_dir: str = "~/.cache/hdm-stream/tensorrt"

    def __post_init__(self) -> None:
        if self.max_megapixels <= 0:
            raise ConfigError(f"max_megapixels must be > 0, got {self.max_megapixels}")
        if not 0 <= self.strength <= 1:
            raise ConfigError(f"strength must be in [0, 1] (1: fully enhanced, 0: the input), "
                              f"got {self.strength}")


@dataclass(frozen=True)
class Optimisations:
    """The optimisations :meth:`Engine.build` applies, each switchable so that benchmarks can
    measure it on its own (benchmarks/bench_matrix.py ablations) and the quality guard can check
    it. All on by default, on every device: on the 2-core CPU, channels_last halved hdm-s's time
    at 360p and the fused head took a further 20% off hdm's. None changes results beyond float
    rounding.

    Args:
        fuse_head: the exact 13×13 fusion of the head's three 5×5 convs (hdm.fusion).
        channels_last: NHWC activations end to end (what cuDNN's and Triton's convs prefer).
        compile_masks: torch.compile the DCP estimate too (compiling backends only).
    """

    fuse_head: bool = True
    channels_last: bool = True
    compile_masks: bool = True


@dataclass
class PendingBatch:
    """An enhanced batch on its way to the host; :meth:`result` waits for it.

    ``host`` is B×H×W×3 RGB (or B×(3H/2)×W I420 planes) in pinned memory on a GPU; the arrays
    returned are views of it, so it lives as long as they do.
    """

    host: torch.Tensor
    dtype: np.dtype
    done: torch.cuda.Event | None = None
    _images: list[np.ndarray] = field(default_factory=list)

    def result(self) -> list[np.ndarray]:
        if not self._images:
            if self.done is not None:
                self.done.synchronize()
            self._images = list(self.host.numpy().astype(self.dtype, copy=False))
        return self._images


class Engine:
    """Enhances batches of frames; build it with :meth:`build`."""

    def __init__(
        self,
        model: nn.Module,
        runner: nn.Module,
        device: torch.device,
        dtype: torch.dtype,
        backend: str,
        settings: EngineSettings,
        smoothing: SmoothingParams,
        estimate: Callable[..., tuple[torch.Tensor, dcp.DCPStats]] = dcp.estimate,
        channels_last: bool = False,
        stabiliser: StabiliserParams = StabiliserParams(),
    ) -> None:
        self.model = model
        self.runner = runner
        self.device = device
        self.dtype = dtype
        self.backend = backend
        self.settings = settings
        self.smoothing = smoothing
        self.stabiliser = stabiliser
        self.estimate = estimate
        self.colour_on_device = settings.colour == "device" or (
            settings.colour == "auto" and device.type == "cuda"
        )
        self.description = f"{_model_name(model)} on {device} ({backend}, {_dtype_name(dtype)})"
        self._smoothers: dict[str, MaskSmoother] = {}
        self._stabilisers: dict[str, OutputStabiliser] = {}
        self._copy_stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.channels_last = channels_last
        self.batch_size = 1  # what compiled code is specialised to; set by warmup()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        settings: EngineSettings,
        smoothing: SmoothingParams = SmoothingParams(),
        *,
        stabiliser: StabiliserParams = StabiliserParams(),
        optimisations: Optimisations = Optimisations(),
    ) -> Engine:
        _validate(settings)
        device = _resolve_device(settings.device)
        model = _build_model(settings)
        model = model.eval().requires_grad_(False).to(device)
        if isinstance(model, HDM) and optimisations.fuse_head:
            fuse_head(model)  # exact, 39% fewer multiply-adds
        dtype = PRECISIONS[settings.precision] or (
            torch.bfloat16 if device.type == "cuda" else torch.float32
        )
        if device.type == "cpu" and dtype is torch.float16:
            raise EngineError("fp16 needs a GPU; use --precision fp32 or bf16 on the CPU")
        backend = _resolve_backend(settings.backend, device)
        if optimisations.channels_last:
            # torch's stubs lack Module.to's memory_format overload
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        runner: nn.Module = model
        estimate = dcp.estimate
        if backend == "tensorrt":
            runner = TensorRTRunner(model, dtype, Path(settings.cache_dir).expanduser())
        elif backend == "compile":
            runner = cast(nn.Module, torch.compile(model, dynamic=False,
                                                   mode=settings.compile_mode))
        if backend != "eager" and optimisations.compile_masks:
            # Never CUDA graphs here: the smoother keeps these outputs across calls, and a graph
            # replay would overwrite them.
            estimate = torch.compile(dcp.estimate, dynamic=False)
        return cls(model, runner, device, dtype, backend, settings, smoothing, estimate,
                   channels_last=optimisations.channels_last, stabiliser=stabiliser)

    # -- running ------------------------------------------------------------------------------
    def enhance(
        self,
        images: list[np.ndarray],
        stream_id: str = "stream0",
        *,
        tags: ColorTags = ColorTags(),
        planar_out: bool = False,
    ) -> list[np.ndarray]:
        """Enhance a batch of same-size frames, synchronously (see :meth:`submit`)."""
        return self.submit(images, stream_id, tags=tags, planar_out=planar_out).result()

    def submit(
        self,
        images: list[np.ndarray],
        stream_id: str = "stream0",
        *,
        tags: ColorTags = ColorTags(),
        planar_out: bool = False,
    ) -> PendingBatch:
        """Queue a batch: H×W×3 RGB arrays (uint8 or uint16) or (3H/2)×W I420 planes in the
        colours ``tags`` describe. The result is RGB of the input's dtype, or I420 planes in
        ``tags``' colours when ``planar_out`` (H and W even)."""
        if not images:
            return PendingBatch(torch.empty(0, dtype=torch.uint8), np.dtype(np.uint8))
        first = images[0]
        planes = first.ndim == 2  # I420: (3H/2)×W
        self.check_size(first.shape[0] * 2 // 3 if planes else first.shape[0], first.shape[1])
        x = self.upload(images, tags)
        out = self.infer(x, stream_id)
        dtype = np.dtype(np.uint8) if planes else first.dtype
        return self.download(out, dtype, tags if planar_out else None)

    def upload(self, images: list[np.ndarray], tags: ColorTags = ColorTags()) -> torch.Tensor:
        """Copy a batch to the device (through pinned memory, on the copy stream on a GPU) and
        convert it to B×3×H×W float RGB in [0, 1], channels_last unless switched off."""
        first = images[0]
        host = torch.empty((len(images), *first.shape), dtype=_HOST_DTYPES[first.dtype],
                           pin_memory=self.device.type == "cuda")
        np.stack(images, out=host.numpy())
        if self._copy_stream is None:
            raw = host
        else:
            with torch.cuda.stream(self._copy_stream):
                raw = host.to(self.device, non_blocking=True)
            torch.cuda.current_stream(self.device).wait_stream(self._copy_stream)
            raw.record_stream(torch.cuda.current_stream(self.device))
        if first.ndim == 2:
            x = yuv420_to_rgb(raw, tags.matrix, tags.range)
        else:
            x = raw.permute(0, 3, 1, 2).float() / _full_scale(first.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.inference_mode()
    def infer(self, x: torch.Tensor, stream_id: str = "stream0") -> torch.Tensor:
        """Enhanced B×3×H×W float in [0, 1] on the device.

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
            if isinstance(self.model, HDM):
                masks = self._masks(x, stream_id, count)
                out = self.runner(x, masks)
            else:
                out = self.runner(x)
        # Out of place: with CUDA graphs ``out`` is a buffer the next replay overwrites.
        out = out[:count].float().clamp(0.0, 1.0)
        if self.settings.strength < 1:
            out = torch.lerp(x[:count].float(), out, self.settings.strength)
        stabiliser = self._stabilisers.get(stream_id)
        if stabiliser is None:
            stabiliser = self._stabilisers[stream_id] = OutputStabiliser(self.stabiliser)
        return stabiliser(x[:count], out)

    def download(
        self, out: torch.Tensor, dtype: np.dtype, planar_tags: ColorTags | None = None
    ) -> PendingBatch:
        """Quantise on the device and start the copy back; I420 planes when ``planar_tags``."""
        if planar_tags is not None:
            pixels = rgb_to_yuv420(out, planar_tags.matrix, planar_tags.range)
        else:
            pixels = (out * _full_scale(dtype)).round_().permute(0, 2, 3, 1)
            pixels = pixels.to(torch.int32 if dtype == np.uint16 else torch.uint8)
        if self.device.type != "cuda":
            return PendingBatch(pixels.contiguous(), dtype)
        host = torch.empty(pixels.shape, dtype=pixels.dtype, pin_memory=True)
        host.copy_(pixels, non_blocking=True)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(self.device))
        return PendingBatch(host, dtype, done)

    def warmup(self, height: int, width: int, batch: int = 1) -> None:
        """Run once at the stream's size and batch size, so compilation is not timed as the
        first frame (and later short batches are padded to ``batch``). RGB suffices: I420
        frames reach the network as the same float tensor."""
        self.batch_size = batch
        dummy = [np.zeros((height, width, 3), np.uint8)] * batch
        self.enhance(dummy, stream_id="__warmup__")
        self._smoothers.pop("__warmup__", None)
        self._stabilisers.pop("__warmup__", None)

    def check_size(self, height: int, width: int) -> None:
        """EngineError for frames larger than ``max_megapixels``, with the limit to change."""
        limit = self.settings.max_megapixels
        if height * width > limit * 1e6:
            raise EngineError(
                f"frames of {width}x{height} ({height * width / 1e6:.3g} MP) are larger than "
                f"this engine takes ({limit:g} MP, model.max_megapixels); scale the input down "
                "(e.g. ffmpeg -vf scale=-2:2160) or raise the limit if the device has the memory")

    @property
    def scene_cuts(self) -> int:
        return sum(int(s.cuts) for s in self._smoothers.values())

    def _masks(self, x: torch.Tensor, stream_id: str, count: int) -> torch.Tensor:
        """Masks for all of ``x``; only its first ``count`` frames are real and smoothed, the
        rest (padding) repeat the last real frame's masks."""
        assert isinstance(self.model, HDM)
        padded = pad_input(x)
        config = self.model.config
        smoother = self._smoothers.get(stream_id)
        if smoother is None:
            smoother = MaskSmoother(
                regions=config.regions, mode=config.mask_mode,
                lowlight=config.lowlight_masks, params=self.smoothing, estimate=self.estimate,
            )
            self._smoothers[stream_id] = smoother
        masks = smoother(padded, count)
        padding = x.shape[0] - count
        return torch.cat([masks, masks[-1:].expand(padding, -1, -1, -1)]) if padding else masks

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.dtype is torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def _full_scale(dtype: np.dtype) -> float:
    """The code value of full white for 8- or 16-bit samples."""
    return 65535.0 if dtype == np.uint16 else 255.0


def _validate(settings: EngineSettings) -> None:
    choices = {"precision": tuple(PRECISIONS), "compile_mode": COMPILE_MODES, "colour": COLOUR}
    for name, allowed in choices.items():
        if getattr(settings, name) not in allowed:
            raise EngineError(f"{name} must be one of {list(allowed)}, got "
                              f"{getattr(settings, name)!r}")



def _resolve_backend(requested: str, device: torch.device) -> str:
    """The backend to use; one log line for each fallback, saying why."""
    if requested not in BACKENDS:
        raise EngineError(f"backend must be one of {BACKENDS}, got {requested!r}")
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


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise EngineError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked for but no CUDA GPU is available")
    return device


def _build_model(settings: EngineSettings) -> nn.Module:
    name, weights = settings.model, settings.weights
    if name == "auto":
        shipped = DEFAULT_WEIGHTS.get(settings.task)
        if shipped is not None and weights == "default":
            name = shipped.value.preset
        elif weights == "default":
            name = "dcp"
            log.warning("no trained HDM weights are installed for %s; using the classical DCP "
                        "enhancer (pass --model hdm --weights PATH for a checkpoint)",
                        settings.task)
        else:
            name = "hdm"
    try:
        if name == "dcp":
            return hdm.build_model("dcp", task=settings.task)
        resolved = None if weights == "random" else weights
        model = hdm.build_model(name, task=settings.task, weights=resolved, mask_mode="soft")
    except hdm.HDMError as error:
        raise EngineError(str(error)) from error
    if weights == "random":
        log.warning("%s runs with random weights: output is for timing only", name)
    return model


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
        import torch_tensorrt  # optional dependency, checked by Engine.build

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
