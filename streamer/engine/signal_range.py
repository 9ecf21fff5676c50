"""HDR pictures enhanced in the range the model knows: a PQ (HDR10) or HLG frame's code values
are turned into display light relative to SDR's reference white (203 cd/m², BT.2408; HLG for a
1000 cd/m² display), in BT.709 primaries, coded with SDR's gamma 2.4; the model gets the part
within SDR's range, and what lies outside it (highlights above white, colours outside BT.709)
is added back to its output before the frame is coded as PQ or HLG again. The mapping is exact
both ways, and an SDR picture carried into HDR is enhanced exactly as the SDR picture is.

Why: the network was trained on SDR pictures, and HDR codes are distributed unlike them (SDR
white sits at PQ 0.58). Measured on SDR test pairs carried into HDR (benchmarks/bench_hdr.py):
the shipped dehaze model fell from 21.09 dB to 10.62 dB (below its input's 13.89) fed PQ codes,
and to 17.98 dB fed HLG codes; through this mapping it gives 21.09 dB (PQ) and 20.69 (HLG).
"""

from __future__ import annotations

import torch

from streamer.frames import PQ
from streamer.media.hdr import (
    BT2020_LUMA,
    BT2020_TO_BT709,
    HLG_ABC,
    HLG_DISPLAY_NITS,
    PQ_CONSTANTS,
    SDR_WHITE_NITS,
)

__all__ = ["from_sdr_range", "to_sdr_range"]

_M1, _M2, _C1, _C2, _C3 = PQ_CONSTANTS
_A, _B, _C = HLG_ABC
_HLG_GAMMA = 1.2
_LUMA = tuple(float(w) for w in BT2020_LUMA)
_GAMMA = 2.4
_TO_BT709 = torch.from_numpy(BT2020_TO_BT709).double()
_TO_BT2020 = torch.linalg.inv(_TO_BT709)


def _primaries(rgb: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(rgb), rgb)


def _signed_power(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """Out-of-gamut colours have negative components: their power keeps the sign."""
    return x.sign() * x.abs() ** exponent


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """B×1×H×W luminance of B×3×H×W BT.2020 RGB."""
    r, g, b = rgb.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _to_nits(x: torch.Tensor, transfer: int) -> torch.Tensor:
    """Display light of PQ or HLG codes in [0, 1]."""
    x = x.clamp(0, 1)
    if transfer == PQ:
        e = x ** (1 / _M2)
        return 10000 * ((e - _C1).clamp(min=0) / (_C2 - _C3 * e)) ** (1 / _M1)
    scene = torch.where(x <= 0.5, x * x / 3, (torch.exp((x - _C) / _A) + _B) / 12)
    return HLG_DISPLAY_NITS * _luma(scene).clamp(min=1e-8) ** (_HLG_GAMMA - 1) * scene  # the OOTF


def _from_nits(nits: torch.Tensor, transfer: int) -> torch.Tensor:
    if transfer == PQ:
        y = (nits / 10000).clamp(0, 1) ** _M1
        return ((_C1 + _C2 * y) / (1 + _C3 * y)) ** _M2
    display = (nits / HLG_DISPLAY_NITS).clamp(0, 1)
    scene_luma = _luma(display).clamp(min=1e-8) ** (1 / _HLG_GAMMA)
    scene = (display / scene_luma ** (_HLG_GAMMA - 1)).clamp(0, 1)
    return torch.where(scene <= 1 / 12, (3 * scene).sqrt(),
                       _A * torch.log((12 * scene - _B).clamp(min=1e-8)) + _C)


def to_sdr_range(x: torch.Tensor, transfer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """B×3×H×W BT.2020 PQ or HLG codes in [0, 1] -> (the picture within SDR's range: BT.709,
    gamma 2.4, in [0, 1]; what lies outside it, to add back)."""
    relative = _primaries(_to_nits(x, transfer) / SDR_WHITE_NITS, _TO_BT709)
    v = _signed_power(relative, 1 / _GAMMA)
    base = v.clamp(0, 1)
    return base, v - base


def from_sdr_range(base: torch.Tensor, outside: torch.Tensor, transfer: int) -> torch.Tensor:
    """The inverse of :func:`to_sdr_range`: BT.2020 PQ or HLG codes in [0, 1]."""
    relative = _signed_power(base.clamp(0, 1) + outside, _GAMMA)
    nits = _primaries(relative, _TO_BT2020).clamp(min=0) * SDR_WHITE_NITS
    return _from_nits(nits, transfer)
