"""Frames to the device and back: pinned staging, copies on their own CUDA stream, and the
YUV<->RGB conversion by each frame's own matrix and range (a batch may mix streams).

On a GPU, :meth:`Transfer.upload` returns at once (the copy runs on a copy stream that the
compute stream waits on) and :meth:`Transfer.download` starts an asynchronous copy into pinned
memory that :meth:`PendingBatch.result` waits for, so the server keeps one batch in flight while
the CPU prepares the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import torch

from streamer.engine.colour import rgb_to_yuv420, yuv420_to_rgb
from streamer.frames import Layout, YuvCoding, full_scale

__all__ = ["HOST_DTYPES", "PendingBatch", "Transfer"]

HOST_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.uint16): torch.uint16}
"""The sample types frames may have on the host, and their torch twins."""


@dataclass
class PendingBatch:
    """An enhanced batch on its way to the host; :meth:`result` waits for it.

    ``host`` is B×H×W×3 RGB (or B×(3H/2)×W I420 planes) in pinned memory on a GPU; the arrays
    returned are views of it, so it lives as long as they do. ``tasks``: the task each frame
    ran, where they differ (``--task auto``); empty: the engine's own.
    """

    host: torch.Tensor
    layout: Layout
    done: torch.cuda.Event | None = None
    _images: list[np.ndarray] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)

    @classmethod
    def ready(cls, images: list[np.ndarray], layout: Layout) -> PendingBatch:
        """A batch already on the host (the CPU's planes path)."""
        return cls(torch.empty(0, dtype=torch.uint8), layout, _images=images)

    def result(self) -> list[np.ndarray]:
        if not self._images and self.host.numel():
            if self.done is not None:
                self.done.synchronize()
            self._images = list(self.host.numpy())
        return self._images


def _quantised(frame: torch.Tensor) -> np.ndarray:
    """A 3×H×W float frame in [0, 1] as H×W×3 uint8 through OpenCV (one pass, rounding half to
    even as torch does: the same bytes, in a quarter of torch's time at 1080p on 2 cores)."""
    hwc = frame.permute(1, 2, 0).contiguous().numpy()  # a view when channels_last
    return cv2.convertScaleAbs(cv2.max(hwc, 0.0), alpha=255.0)


def _groups(codings: Sequence[YuvCoding]) -> dict[YuvCoding, list[int]]:
    groups: dict[YuvCoding, list[int]] = {}
    for index, coding in enumerate(codings):
        groups.setdefault(coding, []).append(index)
    return groups


class _Convert(Protocol):
    def __call__(self, batch: torch.Tensor, coding: YuvCoding) -> torch.Tensor: ...


class Transfer:
    """Moves batches between host arrays and B×3×H×W float RGB on ``device``."""

    def __init__(self, device: torch.device, *, channels_last: bool = True) -> None:
        self.device = device
        self.channels_last = channels_last
        self._copy_stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def upload(self, images: Sequence[np.ndarray], layout: Layout,
               codings: Sequence[YuvCoding] = ()) -> torch.Tensor:
        """B×3×H×W float RGB in [0, 1] (channels_last unless switched off) from same-shaped
        arrays in ``layout``; I420 frames are converted with their own entry of ``codings``."""
        first = images[0]
        host = torch.empty((len(images), *first.shape), dtype=HOST_DTYPES[first.dtype],
                           pin_memory=self.device.type == "cuda")
        np.stack(images, out=host.numpy())
        if self._copy_stream is None:
            raw = host
        else:
            with torch.cuda.stream(self._copy_stream):
                raw = host.to(self.device, non_blocking=True)
            torch.cuda.current_stream(self.device).wait_stream(self._copy_stream)
            raw.record_stream(torch.cuda.current_stream(self.device))
        if layout is Layout.I420:
            x = self._per_coding(raw, codings, lambda part, c: yuv420_to_rgb(part, *c))
        else:
            x = raw.permute(0, 3, 1, 2).float() / full_scale(layout)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def download(self, out: torch.Tensor, layout: Layout,
                 codings: Sequence[YuvCoding] = ()) -> PendingBatch:
        """Quantise on the device into ``layout`` (I420 by each frame's coding) and start the
        copy back."""
        if layout is Layout.I420:
            pixels = self._per_coding(out, codings, lambda part, c: rgb_to_yuv420(part, *c))
        elif layout is Layout.RGB24 and out.device.type == "cpu" and out.dtype == torch.float32:
            return PendingBatch.ready([_quantised(frame) for frame in out], layout)
        else:
            pixels = (out * full_scale(layout)).round_().permute(0, 2, 3, 1)
            pixels = pixels.to(torch.uint16 if layout is Layout.RGB48 else torch.uint8)
        if self.device.type != "cuda":
            return PendingBatch(pixels.contiguous(), layout)
        host = torch.empty(pixels.shape, dtype=pixels.dtype, pin_memory=True)
        host.copy_(pixels, non_blocking=True)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(self.device))
        return PendingBatch(host, layout, done)

    @staticmethod
    def _per_coding(batch: torch.Tensor, codings: Sequence[YuvCoding], convert: _Convert
                    ) -> torch.Tensor:
        """``convert`` applied to each group of frames that share a coding, results in order
        (one kernel launch per coding, not per frame: a batch usually has one or two)."""
        groups = _groups(codings)
        if len(groups) == 1:
            return convert(batch, next(iter(groups)))
        parts = {coding: convert(batch[indexes], coding) for coding, indexes in groups.items()}
        first = next(iter(parts.values()))
        result = first.new_empty((batch.shape[0], *first.shape[1:]))
        for coding, indexes in groups.items():
            result[indexes] = parts[coding]
        return result
