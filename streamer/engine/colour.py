"""YUV 4:2:0 <-> RGB as tensor ops, so frames can travel to and from the GPU as planes.

A decoded 8-bit frame is usually yuv420p: 1.5 bytes per pixel against RGB's 3, and converting it
with swscale on the decode and encode threads costs CPU time the pipeline needs for decoding and
x264. On the GPU the conversion is a few elementwise kernels. Frames travel as PyAV's I420 layout:
one uint8 array of (3H/2)×W holding the Y plane, then U, then V, each plane packed row by row.

Chroma siting follows H.264/HEVC's default (MPEG-2): chroma samples sit on the even luma columns
and halfway between luma rows. Colour matrices and ranges use FFmpeg's codes (see
:class:`streamer.frames.ColorTags`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["rgb_to_yuv", "rgb_to_yuv420", "split_planes", "yuv420_to_rgb", "yuv_to_rgb"]

# (Kr, Kb) by FFmpeg's AVColorSpace code; unknown codes are treated as BT.709, as swscale does.
_LUMA_WEIGHTS = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (BT.601)
    6: (0.299, 0.114),  # SMPTE 170M (BT.601)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
    10: (0.2627, 0.0593),  # BT.2020 constant luminance (approximated by NCL)
}
_RANGE_FULL = 2


def _weights(matrix: int) -> tuple[float, float, float]:
    kr, kb = _LUMA_WEIGHTS.get(matrix, _LUMA_WEIGHTS[1])
    return kr, 1.0 - kr - kb, kb


def _levels(color_range: int) -> tuple[float, float, float]:
    """(luma offset, luma span, chroma span) in 8-bit code values."""
    if color_range == _RANGE_FULL:
        return 0.0, 255.0, 255.0
    return 16.0, 219.0, 224.0


def split_planes(planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """B×(3H/2)×W I420 -> views of Y (B×1×H×W), U and V (B×1×H/2×W/2)."""
    batch, rows, width = planes.shape
    height = rows * 2 // 3
    flat = planes.reshape(batch, -1)
    luma, chroma = height * width, (height // 2) * (width // 2)
    y, u, v = flat.split([luma, chroma, chroma], dim=1)
    half = (batch, 1, height // 2, width // 2)
    return y.reshape(batch, 1, height, width), u.reshape(half), v.reshape(half)


def _upsample_chroma(c: torch.Tensor) -> torch.Tensor:
    """B×1×h×w -> B×1×2h×2w: vertically interpolated at 1/4 and 3/4 (samples between rows),
    horizontally copied on even columns and averaged on odd ones (samples on even columns)."""
    batch, _, h, w = c.shape
    padded = F.pad(c, (0, 1, 1, 1), mode="replicate")
    centre, above, below = padded[:, :, 1:-1], padded[:, :, :-2], padded[:, :, 2:]
    rows = torch.stack([0.75 * centre + 0.25 * above, 0.75 * centre + 0.25 * below], dim=3)
    rows = rows.reshape(batch, 1, 2 * h, w + 1)
    even, right = rows[..., :-1], rows[..., 1:]
    return torch.stack([even, 0.5 * (even + right)], dim=-1).reshape(batch, 1, 2 * h, 2 * w)


def _downsample_chroma(c: torch.Tensor) -> torch.Tensor:
    """B×1×H×W -> B×1×H/2×W/2 at the siting :func:`_upsample_chroma` assumes: a [1, 2, 1]
    filter centred on even columns and the mean of each pair of rows."""
    rows = 0.5 * (c[:, :, 0::2] + c[:, :, 1::2])
    padded = F.pad(rows, (1, 0, 0, 0), mode="replicate")
    left, centre, right = padded[..., 0:-1:2], padded[..., 1::2], rows[..., 1::2]
    return 0.25 * left + 0.5 * centre + 0.25 * right


def yuv_to_rgb(yuv: torch.Tensor, matrix: int, color_range: int) -> torch.Tensor:
    """B×3×H×W float Y, U, V code values (all at one resolution) -> B×3×H×W float RGB in
    [0, 1], unclamped."""
    offset, luma_span, chroma_span = _levels(color_range)
    kr, kg, kb = _weights(matrix)
    luma = (yuv[:, 0:1] - offset) / luma_span
    pb = (yuv[:, 1:2] - 128.0) / chroma_span
    pr = (yuv[:, 2:3] - 128.0) / chroma_span
    red = luma + 2.0 * (1.0 - kr) * pr
    blue = luma + 2.0 * (1.0 - kb) * pb
    green = (luma - kr * red - kb * blue) / kg
    return torch.cat([red, green, blue], dim=1)


def rgb_to_yuv(rgb: torch.Tensor, matrix: int, color_range: int) -> torch.Tensor:
    """B×3×H×W float RGB in [0, 1] -> B×3×H×W float Y, U, V code values, unrounded."""
    rgb = rgb.float()
    offset, luma_span, chroma_span = _levels(color_range)
    kr, kg, kb = _weights(matrix)
    red, green, blue = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    luma = kr * red + kg * green + kb * blue
    u = 128.0 + chroma_span * (blue - luma) / (2.0 * (1.0 - kb))
    v = 128.0 + chroma_span * (red - luma) / (2.0 * (1.0 - kr))
    return torch.cat([offset + luma_span * luma, u, v], dim=1)


def yuv420_to_rgb(planes: torch.Tensor, matrix: int, color_range: int) -> torch.Tensor:
    """B×(3H/2)×W uint8 I420 -> B×3×H×W float32 full-range RGB in [0, 1]."""
    y, u, v = (p.float() for p in split_planes(planes))
    yuv = torch.cat([y, _upsample_chroma(u), _upsample_chroma(v)], dim=1)
    return yuv_to_rgb(yuv, matrix, color_range).clamp_(0.0, 1.0)


def rgb_to_yuv420(rgb: torch.Tensor, matrix: int, color_range: int) -> torch.Tensor:
    """B×3×H×W float full-range RGB in [0, 1] (H, W even) -> B×(3H/2)×W uint8 I420.
    (The chroma filter's weights sum to one, so it may follow the matrix.)"""
    yuv = rgb_to_yuv(rgb, matrix, color_range)
    y, u, v = yuv[:, 0:1], _downsample_chroma(yuv[:, 1:2]), _downsample_chroma(yuv[:, 2:3])
    batch = rgb.shape[0]
    flat = [p.round().clamp_(0, 255).to(torch.uint8).reshape(batch, -1) for p in (y, u, v)]
    return torch.cat(flat, dim=1).reshape(batch, -1, rgb.shape[-1])
