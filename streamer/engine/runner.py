"""The model on its device behind one of five backends; tensors in, tensors out.

``eager`` runs the module as is. ``openvino`` and ``onnxruntime`` run an ONNX export of it on
the CPU (exported.py; OpenVINO is the CPU default for HDM). ``compile`` wraps it in
torch.compile with bf16 autocast (the CUDA default); ``compile_mode`` picks torch.compile's mode
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

import numpy as np
import torch
from torch import nn

import hdm
from hdm import dcp
from hdm.dcp import MaskMode
from hdm.fusion import fuse_head
from hdm.model import BORDER, HDM, SCALE, pad_input
from hdm.upsample import Fit, describe_window, fit_field, fit_to_input, reduced_size
from hdm.weights import REDUCED_WEIGHTS, Weights
from streamer.engine.colour import rgb_to_yuv, yuv_to_rgb
from streamer.engine.exported import EXPORTED_BACKENDS, ExportedRunner, runtime_version
from streamer.engine.motion import Motion, analysis_grey
from streamer.engine.planes import expand_planes, quantise_planes, shrink_planes
from streamer.engine.reduce import expand, shrink
from streamer.engine.resolution import (
    SMALLEST_SHARE,
    ChoiceCache,
    choose_size,
    machine_name,
    timer,
)
from streamer.engine.settings import PRECISIONS, EngineSettings, InferenceSize, Optimisations
from streamer.engine.temporal import (
    Estimate,
    MaskSmoother,
    OutputStabiliser,
    SmoothingParams,
    StabiliserParams,
    TemporalState,
)
from streamer.errors import EngineError
from streamer.frames import Layout, YuvCoding

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
        inference_size: InferenceSize | str = "full",
        fit: Fit = "channel",
        fit_window: float = 0.0,
        task: str = "",
        choices: ChoiceCache | None = None,
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
        self.inference_size = inference_size
        self.fit = fit
        self.fit_window = fit_window if isinstance(model, HDM) else 0.0  # DCP is fitted already
        self.smallest_share = SMALLEST_SHARE.get(task, 0.0)
        # (height, width) -> the shorter side the network sees (None: full resolution)
        self._short_sides: dict[tuple[int, int], int | None] = {}
        self.choices = choices
        self._hash: str | None = None
        precision = (runner.precision_name if isinstance(runner, ExportedRunner)
                     else _dtype_name(dtype))
        self.description = (f"{_model_name(model)}{f' ({task})' if task else ''} on {device} "
                            f"({backend}, {precision})")

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
        if settings.task == "auto":
            raise EngineError("task auto runs one engine per task: build it with "
                              "streamer.engine.engine_for_settings")
        weights: str | Weights = settings.weights
        reduced = REDUCED_WEIGHTS.get(settings.task)
        inference_size = settings.size_for(settings.task)
        if (weights == "default" and inference_size != "full" and reduced is not None
                and settings.model in ("auto", reduced.value.preset)):
            weights = reduced  # trained for the reduced path
        try:
            model = hdm.resolve(settings.task, settings.model, weights,
                                mask_mode=_mask_mode(settings))
        except hdm.HDMError as error:
            raise EngineError(str(error)) from error
        model = model.eval().requires_grad_(False).to(device)
        if isinstance(model, HDM) and optimisations.fuse_head:
            fuse_head(model)  # exact, 39% fewer multiply-adds
        backend = _resolve_backend(settings.backend, device, isinstance(model, HDM))
        if optimisations.channels_last:
            # torch's stubs lack Module.to's memory_format overload
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        runner: nn.Module = model
        estimate: Estimate = dcp.estimate
        cache = Path(settings.cache_dir).expanduser()
        if backend == "tensorrt":
            runner = TensorRTRunner(model, dtype, cache / "tensorrt")
        elif backend in EXPORTED_BACKENDS:
            runner = ExportedRunner(model, backend, model_hash,
                                    settings.precision, cache / "onnx")
            dtype = torch.float32  # the runtime applies the precision inside its graph
        elif backend == "compile":
            runner = cast(nn.Module, torch.compile(model, dynamic=False,
                                                   mode=settings.compile_mode))
        if backend in ("compile", "tensorrt") and optimisations.compile_masks:
            # Never CUDA graphs here: the states keep these outputs across calls, and a graph
            # replay would overwrite them.
            estimate = cast(Estimate, torch.compile(dcp.estimate, dynamic=False))
        return cls(model, runner, device, dtype, backend, strength=settings.strength,
                   smoothing=smoothing, stabiliser=stabiliser, estimate=estimate,
                   channels_last=optimisations.channels_last,
                   inference_size=inference_size, fit=settings.resolved_fit,
                   fit_window=settings.resolved_fit_window,
                   task=settings.task, choices=ChoiceCache(cache / "inference-sizes.json"))

    def short_side(self, height: int, width: int, rate: float | None = None, *,
                   live: bool = False) -> int | None:
        """The shorter side the network sees for frames of this size (None: all of it),
        decided once per size; ``auto`` times the choices here (``rate``: the stream's frames
        per second, which sets the budget; ``live``: a stream that drops what it cannot keep
        up with, which gets the budget's size below a task's floor, see SMALLEST_SHARE)."""
        key = (height, width)
        if key not in self._short_sides:
            self._short_sides[key] = self._decide(height, width, rate, live)
        return self._short_sides[key]

    def _decide(self, height: int, width: int, rate: float | None, live: bool) -> int | None:
        size = self.inference_size
        if size == "full":
            return None
        if isinstance(size, int):
            return size if size < min(height, width) else None
        floor = 0.0 if live else self.smallest_share
        key = (f"{machine_name(str(self.device))} | {self.description} | {self.fit} | "
               f"fit window {self.fit_window:g} | "
               f"{self._weights_hash()} | {width}x{height} | {rate or 'unknown'} fps | "
               f"batch {self.batch_size}"
               + (f" | at least {floor:g} of the frame" if floor else ""))
        kept = self.choices.get(key) if self.choices else None
        if self.choices and kept is not None:
            log.info("auto %s (measured before, kept in %s)%s", kept.describe(height, width),
                     self.choices.path, self._below_floor_note(kept.short_side, height, width))
            return kept.short_side
        x = torch.rand(self.batch_size, 3, height, width, device=self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        states: dict[int | None, list[TemporalState]] = {}

        def run(side: int | None) -> None:
            # One video per size tried, so that later runs smooth against earlier ones as a
            # stream's frames do.
            video = states.setdefault(side, [TemporalState() for _ in range(self.batch_size)])
            with torch.inference_mode():
                self._enhance(x, video, side)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)

        choice = choose_size(timer(run, self.batch_size), height, width,
                             device=self.device.type, rate=rate,
                             smallest_share=floor)
        log.info("auto %s%s", choice.describe(height, width),
                 self._below_floor_note(choice.short_side, height, width))
        if self.choices:
            self.choices.put(key, choice)
        return choice.short_side

    def below_floor(self, side: int | None, height: int, width: int) -> str:
        """What the log and :meth:`Engine.inference_note` say where a size is below the
        task's floor (a live stream's budget, or a size given): the streaks stay."""
        if side is None or side >= self.smallest_share * min(height, width):
            return ""
        return (f"under {self.smallest_share:g} of the frame: rain streaks stay, the veil is "
                "lifted")

    def _below_floor_note(self, side: int | None, height: int, width: int) -> str:
        below = self.below_floor(side, height, width)
        return f"; {self.description}: {below}" if below else ""

    def _weights_hash(self) -> str:
        if self._hash is None:
            self._hash = model_hash(self.model)
        return self._hash

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, states: Sequence[TemporalState]) -> torch.Tensor:
        """Enhanced B×3×H×W float in [0, 1] on the device; frame i steadied with states[i].

        Compiled backends are specialised to the warm-up batch size; a shorter batch (the end
        of a file, a batch cut short by its deadline) is padded with copies of its last frame
        rather than compiled again, and the copies are neither returned nor smoothed over.
        """
        return self._enhance(x, states, self.short_side(*x.shape[-2:]))

    def _enhance(self, x: torch.Tensor, states: Sequence[TemporalState],
                 short_side: int | None) -> torch.Tensor:
        """At a reduced size, the network, its masks and the strength work on the small frame;
        the result is fitted as local affine colour transforms of the small input, those are
        applied to the full frame, and the stabiliser steadies that with motion judged on the
        small frame (cheap, and less sensor noise survives the averaging)."""
        count, _, height, width = x.shape
        # The small frame stays NCHW for the masks and the fit (torch's reflection padding of
        # a channels_last tensor took 2.4 ms at 171x96); the network gets it channels_last.
        small = x if short_side is None else shrink(x, reduced_size(height, width, short_side))
        small, out, motions = self._small(small, states)
        if short_side is not None or self.fit_window:
            # Steadied at full resolution, where the input's own noise (multiplied by the
            # fitted gain) would flicker, with motion judged on the small frame.
            field = self._field(small, out, self.fit)
            out = expand(field, x[:count].float()).clamp_(0.0, 1.0)
        return self.stabiliser(small, out, [s.output for s in states], motions)

    @property
    def fit_radius(self) -> str:
        """The wide fit's radius for start lines (empty when there is none)."""
        return f"radius {describe_window(self.fit_window)} of the frame" if self.fit_window else ""

    def _field(self, small: torch.Tensor, out: torch.Tensor, fit: Fit,
               shared_gain: bool = False) -> torch.Tensor:
        """The affine field taking the network's input to its output: over the task's wide
        windows (hdm.upsample.fit_to_input; ``shared_gain`` for Y'CbCr planes) where it has
        one, else over 5×5 windows."""
        if self.fit_window:
            return fit_to_input(small, out, window=self.fit_window, fit=fit,
                                shared_gain=shared_gain)
        return fit_field(small, out, fit=fit)

    @torch.inference_mode()
    def enhance_planes(self, frames: Sequence[np.ndarray], codings: Sequence[YuvCoding],
                       states: Sequence[TemporalState]) -> list[np.ndarray]:
        """Enhanced uint8 I420 frames (each (3H/2)×W, coded by its entry of ``codings``) for
        a reduced size and the channel fit, on the CPU: see planes.py."""
        height, width = Layout.I420.size(frames[0])
        short_side = self.short_side(height, width)
        if short_side is None or not self.takes_planes:
            raise EngineError("the planes path needs a reduced inference size and the channel "
                              "fit on a CPU")
        yuv = shrink_planes(frames, reduced_size(height, width, short_side))
        rgb = torch.cat([yuv_to_rgb(yuv[i : i + 1], *coding)
                         for i, coding in enumerate(codings)]).clamp_(0.0, 1.0)
        small, out, motions = self._small(rgb, states)
        target = torch.cat([rgb_to_yuv(out[i : i + 1], *coding)
                            for i, coding in enumerate(codings)])
        field = self._field(yuv / 255.0, target / 255.0, "channel", shared_gain=True)
        planes = expand_planes(field, frames)
        return quantise_planes(self.stabiliser, small, planes, [s.output for s in states],
                               motions)

    @property
    def follows_camera(self) -> bool:
        """Whether a temporal filter wants the camera's motion (estimated once per frame)."""
        smoothing = self.smoother is not None and self.smoother.params.enabled \
            and self.smoother.params.follow_camera
        stabiliser = self.stabiliser.params
        return smoothing or (stabiliser.enabled and stabiliser.follow_camera)

    @property
    def takes_planes(self) -> bool:
        """Whether I420 frames at a reduced size can skip RGB (see planes.py)."""
        return self.device.type == "cpu" and self.fit == "channel"

    def _small(self, small: torch.Tensor, states: Sequence[TemporalState]
               ) -> tuple[torch.Tensor, torch.Tensor, list[Motion | None]]:
        """The network's output (clamped, blended by the strength) for the first len(states)
        frames of ``small``, with them and the camera's motion since each one's previous frame:
        the masks (their history moved with the camera) and the network, padded to the
        compiled batch size."""
        count = len(states)
        motions = [state.camera.step(analysis_grey(small[i : i + 1])) if self.follows_camera
                   else None for i, state in enumerate(states)]
        if self.backend != "eager" and count < self.batch_size:
            small = torch.cat([small, small[-1:].expand(self.batch_size - count, -1, -1, -1)])
        network_input = small
        if self.channels_last and not isinstance(self.runner, ExportedRunner):
            network_input = small.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            if self.smoother is not None:
                masks = self.smoother(pad_input(small), [s.masks for s in states],
                                      [_in_mask_pixels(m, small.shape[-2]) for m in motions])
                if small.shape[0] > count:  # padding repeats the last real frame's masks
                    masks = torch.cat([masks, masks[-1:].expand(small.shape[0] - count, -1, -1,
                                                                -1)])
                out = self.runner(network_input, masks)
            else:
                out = self.runner(network_input)
        # Out of place: with CUDA graphs ``out`` is a buffer the next replay overwrites.
        out = out[:count].float().clamp(0.0, 1.0)
        small = small[:count]
        if self.strength < 1:
            out = torch.lerp(small.float(), out, self.strength)
        return small, out, motions

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.dtype is torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def _in_mask_pixels(motion: Motion | None, height: int) -> np.ndarray | None:
    """The camera's motion in the DCP masks' pixels: a quarter of the network's input, which
    is the picture (``height`` rows) with a reflected border of BORDER pixels."""
    if motion is None:
        return None
    scale = height / motion.size[0] / SCALE
    return motion.at(scale, scale, BORDER / SCALE, BORDER / SCALE)


def _mask_mode(settings: EngineSettings) -> MaskMode | None:
    """Soft masks for untrained networks (video needs no bin edges); a checkpoint keeps the mode
    it was trained with; the classical enhancer has none."""
    return "soft" if settings.weights == "random" and settings.model != "dcp" else None


def _resolve_backend(requested: str, device: torch.device, exportable: bool = True) -> str:
    """The backend to use; one log line for each fallback, saying why. ``auto`` on a CPU is
    OpenVINO where it is installed (the fastest measured there, see exported.py) for HDM, and
    eager for the classical enhancer (its statistics are not worth an export)."""
    if requested == "auto":
        if device.type == "cuda":
            return "compile"
        return "openvino" if exportable and runtime_version("openvino") else "eager"
    if requested in EXPORTED_BACKENDS:
        if device.type != "cpu":
            log.warning("the %s backend runs on the CPU; using torch.compile on %s", requested,
                        device)
            return "compile"
        if not exportable:
            log.warning("the %s backend runs HDM networks; the classical enhancer runs eager",
                        requested)
            return "eager"
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
