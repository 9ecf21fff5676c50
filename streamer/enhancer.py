"""Enhance your own frames from Python, with the engine and temporal state the CLI uses.

    from streamer import Enhancer

    enhancer = Enhancer("lowlight")                  # shipped weights, best device
    out = enhancer.enhance(frame)                    # H×W×3 uint8 RGB -> same
    camera = Enhancer("derain", live=True)          # frames that must be kept up with
    for out in camera.stream(camera_frames()):       # any iterable of frames, batched inside
        show(out)

Frames are RGB numpy arrays, H×W×3, uint8 or uint16 (then the 16-bit path is used end to end).
Consecutive calls are consecutive frames of one video: masks and output are steadied over time
as in ``hdm-stream run``; call :meth:`Enhancer.reset` before a different video (a scene cut resets
by itself). Anything else (grey, RGBA, float, a mix of sizes in one batch) is refused with a
:class:`~streamer.errors.FrameError` that says what was given.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from streamer.engine import EngineSettings, TemporalState, engine_for_settings
from streamer.engine.settings import Backend, ModelName, Precision, Task
from streamer.engine.temporal import SmoothingParams, StabiliserParams
from streamer.engine.transfer import HOST_DTYPES
from streamer.errors import ConfigError, FrameError

__all__ = ["Enhancer"]


def check_frame(frame: object) -> np.ndarray:
    """``frame`` as a contiguous H×W×3 uint8/uint16 array, or FrameError saying what it is."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype not in HOST_DTYPES:
        floating = frame.dtype.kind == "f"
        hint = " (scale float images to 0..255 and convert to uint8)" if floating else ""
        raise FrameError(f"frames must be uint8 or uint16, got {frame.dtype}{hint}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        kind = {2: "grey (H×W)"}.get(frame.ndim, f"shape {frame.shape}")
        if frame.ndim == 3 and frame.shape[2] == 4:
            kind = "RGBA (H×W×4); drop the alpha channel"
        raise FrameError(f"frames must be RGB, H×W×3; got {kind}")
    if min(frame.shape[:2]) < 1:
        raise FrameError(f"empty frame of shape {frame.shape}")
    return np.ascontiguousarray(frame)


class Enhancer:
    """One video's enhancer: a model on a device, with its own temporal state.

    Args:
        task: ``dehaze``, ``derain`` or ``lowlight``.
        model, weights, device, backend, precision: as ``hdm-stream run`` (``auto``: the
            shipped HDM-S weights, the GPU when there is one).
        strength: 0..1, the blend of enhanced frame and input.
        inference_size: what the network sees, as ``--inference-size``: ``full``, ``auto``
            (the largest size that keeps up with ``rate`` frames per second on this device)
            or a shorter side in pixels.
        rate: the video's frames per second, for ``auto`` (default 25).
        live: the frames come from a camera that must be kept up with: ``auto`` then keeps
            derain within the frame budget, where a file's derain sees at least 3/4 of the
            frame however long it takes (below that the streaks stay; README, "Derain needs
            its resolution").
        fit_window: as ``--fit-window``: the dehazed output fitted to its input in windows of
            this radius (a fraction of the longer side, or ``1/N``; ``auto``: the task's, 1/32
            for dehazing; 0: off). Dehazing only.
        smoothing, stabiliser: steady the DCP masks / the output over time (video); turn both
            off for unrelated photos.
    """

    def __init__(self, task: Task = "dehaze", *, model: ModelName = "auto",
                 weights: str = "default", device: str = "auto", backend: Backend = "auto",
                 precision: Precision = "auto", strength: float = 1.0,
                 inference_size: int | str = "auto", rate: float | None = None,
                 live: bool = False,
                 fit_window: float | str = "auto", smoothing: bool = True,
                 stabiliser: bool = True) -> None:
        try:
            settings = EngineSettings(model=model, task=task, weights=weights, device=device,
                                      backend=backend, precision=precision, colour="host",
                                      strength=strength, inference_size=inference_size,
                                      fit_window=fit_window)
        except ConfigError as error:
            raise ConfigError(f"Enhancer: {error}") from None
        self.engine = engine_for_settings(settings, SmoothingParams(enabled=smoothing),
                                          stabiliser=StabiliserParams(enabled=stabiliser))
        self.state = TemporalState()
        self.rate, self.live = rate, live

    def reset(self) -> None:
        """Forget the temporal state: the next frame starts a new video."""
        self.state = TemporalState()

    def enhance(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
        """Enhance one frame (H×W×3) or a batch of consecutive same-size frames; returns a list
        of enhanced frames of the input's dtype (one for one frame)."""
        batch = [frames] if isinstance(frames, np.ndarray) and frames.ndim != 4 else list(frames)
        checked = [check_frame(f) for f in batch]
        if not checked:
            return []
        first = checked[0]
        for frame in checked[1:]:
            if frame.shape != first.shape or frame.dtype != first.dtype:
                raise FrameError(f"frames of one batch must share size and dtype: {first.shape} "
                                 f"{first.dtype} then {frame.shape} {frame.dtype}")
        height, width = first.shape[:2]
        self.engine.runner.short_side(height, width, self.rate, live=self.live)  # auto decides
        return self.engine.enhance(checked, self.state)

    def stream(self, frames: Iterable[np.ndarray], batch: int = 1) -> Iterator[np.ndarray]:
        """Enhanced frames of an iterable (a generator of camera frames, say), in order, in
        batches of ``batch`` frames (larger batches: more throughput on a GPU, more latency)."""
        if batch < 1:
            raise FrameError(f"batch must be >= 1, got {batch}")
        iterator = iter(frames)
        while chunk := list(itertools.islice(iterator, batch)):
            yield from self.enhance(chunk)
