"""The engine: a model runner and the transfers around it, behind one ``submit``.

It sees arrays, layouts, YUV codings and temporal states, never streams, colour tags or PyAV:
a batch may hold frames of several streams, each frame with its own coding and its stream's
:class:`TemporalState`. Build it with :meth:`Engine.build`; drive it from one thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hdm.upsample import reduced_size
from streamer.engine.runner import ModelRunner
from streamer.engine.settings import EngineSettings, Optimisations
from streamer.engine.signal_range import from_sdr_range, to_sdr_range
from streamer.engine.temporal import SmoothingParams, StabiliserParams, TemporalState
from streamer.engine.transfer import PendingBatch, Transfer
from streamer.errors import EngineError
from streamer.frames import ANY, HDR_TRANSFERS, RGB, Layout, YuvCoding

__all__ = ["Engine", "EngineBatch"]


@dataclass(frozen=True)
class EngineBatch:
    """Same-shaped frames to enhance together.

    Attributes:
        images: the arrays, all in ``layout``.
        layout: RGB24 / RGB48 (H×W×3) or I420 planes ((3H/2)×W).
        codings: each frame's YUV matrix and range (needed for I420 in or out).
        out_layout: what to return: RGB of the input's depth (None), or I420 planes.
        transfers: each frame's transfer characteristic; PQ and HLG frames are enhanced in
            SDR's range (see signal_range.py). Empty: all SDR.
    """

    images: Sequence[np.ndarray]
    layout: Layout
    codings: Sequence[YuvCoding] = ()
    out_layout: Layout | None = None
    transfers: Sequence[int] = ()

    @property
    def result_layout(self) -> Layout:
        if self.out_layout is not None:
            return self.out_layout
        return Layout.RGB24 if self.layout is Layout.I420 else self.layout


class Engine:
    """Enhances batches of frames; build it with :meth:`build`."""

    def __init__(self, runner: ModelRunner, transfer: Transfer, settings: EngineSettings
                 ) -> None:
        self.runner = runner
        self.transfer = transfer
        self.settings = settings
        self.colour_on_device = settings.colour == "device" or (
            settings.colour == "auto" and runner.device.type == "cuda"
        )

    @classmethod
    def build(
        cls,
        settings: EngineSettings,
        smoothing: SmoothingParams = SmoothingParams(),
        *,
        stabiliser: StabiliserParams = StabiliserParams(),
        optimisations: Optimisations = Optimisations(),
    ) -> Engine:
        """The engine of one task (``task: auto``, one engine per task behind one submit, is
        :func:`streamer.engine.scene.engine_for_settings`'s, which builds on this module)."""
        if settings.task == "auto":
            raise EngineError("task auto needs an engine per task: build it with "
                              "streamer.engine.engine_for_settings")
        runner = ModelRunner.build(settings, smoothing, stabiliser, optimisations)
        transfer = Transfer(runner.device, channels_last=optimisations.channels_last)
        return cls(runner, transfer, settings)

    # -- what it is -----------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        return self.runner.model

    @property
    def device(self) -> torch.device:
        return self.runner.device

    @property
    def backend(self) -> str:
        return self.runner.backend

    @property
    def description(self) -> str:
        radius = self.runner.fit_radius
        return self.runner.description + (f", fitted to its input ({radius})" if radius else "")

    @property
    def accepts(self) -> frozenset[Layout]:
        """Input layouts: I420 planes when the colour conversion runs on the device, or when a
        CPU at a reduced inference size can enhance the planes themselves (planes.py; then only
        if they go back out as planes, see :attr:`planes_only_through`). Otherwise RGB:
        swscale on the decode thread is as fast as torch's conversion on a CPU."""
        return ANY if self.colour_on_device or self.planes_only_through else RGB

    @property
    def planes_only_through(self) -> bool:
        """I420 is taken on a CPU only to give I420 back (``colour: auto``, a reduced
        inference size, the channel fit): planes in and RGB out would convert at full
        resolution in torch."""
        return (not self.colour_on_device and self.settings.colour == "auto"
                and self.runner.inference_size != "full" and self.runner.takes_planes)

    # -- running ----------------------------------------------------------------------------
    def submit(self, batch: EngineBatch, states: Sequence[TemporalState]) -> PendingBatch:
        """Queue a batch (frame i steadied with ``states[i]``); returns at once on a GPU."""
        if not batch.images:
            return PendingBatch(torch.empty(0, dtype=torch.uint8), batch.result_layout)
        if len(states) != len(batch.images):
            raise EngineError(f"{len(batch.images)} frames need as many states, got "
                              f"{len(states)}")
        self.check_size(*batch.layout.size(batch.images[0]))
        if self._planes_path(batch):
            images = self.runner.enhance_planes(batch.images, batch.codings, states)
            return PendingBatch.ready(images, Layout.I420)
        x = self.transfer.upload(batch.images, batch.layout, batch.codings)
        hdr = {t: [i for i, f in enumerate(batch.transfers) if f == t] for t in HDR_TRANSFERS}
        headroom = {}
        for transfer, indexes in hdr.items():
            if indexes:
                x = x.clone()
                x[indexes], headroom[transfer] = to_sdr_range(x[indexes], transfer)
        out = self.runner(x, states)
        for transfer, room in headroom.items():
            out = out.clone()
            out[hdr[transfer]] = from_sdr_range(out[hdr[transfer]], room, transfer)
        return self.transfer.download(out, batch.result_layout, batch.codings)

    def _planes_path(self, batch: EngineBatch) -> bool:
        """I420 in and out, SDR, on a CPU whose inference size for these frames is reduced."""
        return (batch.layout is Layout.I420 and batch.result_layout is Layout.I420
                and self.planes_only_through
                and not any(t in HDR_TRANSFERS for t in batch.transfers)
                and self.runner.short_side(*batch.layout.size(batch.images[0])) is not None)

    def enhance(self, images: Sequence[np.ndarray], state: TemporalState | None = None
                ) -> list[np.ndarray]:
        """Enhance consecutive same-size RGB frames (H×W×3 uint8 or uint16) of one video,
        synchronously; ``state`` carries the video's temporal memory between calls (None: a
        fresh one, for unrelated pictures)."""
        if not images:
            return []
        state = TemporalState() if state is None else state
        layout = Layout.rgb_for(images[0].dtype)
        return self.submit(EngineBatch(images, layout), [state] * len(images)).result()

    def warmup(self, height: int, width: int, batch: int = 1, *, rate: float | None = None,
               live: bool = False) -> None:
        """Run once at a stream's size and batch size, so compilation is not timed as the
        first frame (and later short batches are padded to ``batch``); an ``auto`` inference
        size is chosen here for the stream's ``rate`` (frames per second) and whether it is
        ``live`` (Runner.short_side). RGB suffices: I420 frames reach the network as the same
        float tensor."""
        self.runner.batch_size = batch
        self.runner.short_side(height, width, rate, live=live)
        dummy = [np.zeros((height, width, 3), np.uint8)] * batch
        self.submit(EngineBatch(dummy, Layout.RGB24), [TemporalState()] * batch).result()

    def inference_note(self, height: int, width: int) -> str:
        """What the network sees of frames of this size, for a start line."""
        side = self.runner.short_side(height, width)
        radius = self.runner.fit_radius
        if side is None:
            return f"full resolution ({self.runner.fit} fit, {radius})" if radius \
                else "full resolution"
        h, w = reduced_size(height, width, side)
        fit = f"{self.runner.fit} fit, {radius}," if radius else f"{self.runner.fit} fit"
        below = self.runner.below_floor(side, height, width)
        return f"{w}x{h} ({fit} to {width}x{height}{'; ' + below if below else ''})"

    def check_size(self, height: int, width: int) -> None:
        """EngineError for frames larger than ``max_megapixels``, with the limit to change."""
        limit = self.settings.max_megapixels
        if height * width > limit * 1e6:
            raise EngineError(
                f"frames of {width}x{height} ({height * width / 1e6:.3g} MP) are larger than "
                f"this engine takes ({limit:g} MP, model.max_megapixels); scale the input down "
                "(e.g. ffmpeg -vf scale=-2:2160) or raise the limit if the device has the memory")
