"""HDR video: a decoded frame's mastering metadata, and the tone map to SDR (the codes PQ,
HLG and the metadata's data class are streamer/frames.py's).

hdm-stream's policy (README, "HDR and 10-bit"): an HDR input (PQ or HLG transfer) is enhanced
through the 16-bit path and written at 10 bits or more with its colour tags and its mastering
display / content light metadata; writing it at 8 bits is refused, because an 8-bit picture
tagged PQ or HLG shows wrong on every screen. With ``tone_map`` the input is turned into SDR
BT.709 as it is decoded instead, so the model sees the kind of picture it was trained on.

The tone map is BT.2390's EETF on the largest of R, G, B in display light (hue kept), mapping
the content's peak to SDR's reference white of 203 cd/m² (BT.2408), after BT.2020 -> BT.709
primaries; HLG is first brought to display light by its OOTF for a 1000 cd/m² display.
"""

from __future__ import annotations

import functools
import struct
import typing

import av
import cv2
import numpy as np

from streamer.frames import DEFAULT_PEAK_NITS, HDR_TRANSFERS, HLG, PQ, HdrMetadata

__all__ = ["BT2020_LUMA", "BT2020_TO_BT709", "HLG_ABC", "HLG_DISPLAY_NITS", "PQ_CONSTANTS",
           "SDR_WHITE_NITS", "hdr_metadata", "tone_map"]

SDR_WHITE_NITS = 203.0  # BT.2408's reference white: where SDR's 1.0 lands
HLG_DISPLAY_NITS = 1000.0  # the display HLG's OOTF is taken for
_MASTERING = struct.Struct("<20i2i")  # AVMasteringDisplayMetadata: 10 rationals, 2 flags
_LIGHT_LEVEL = struct.Struct("<2I")  # AVContentLightMetadata: MaxCLL, MaxFALL
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]], dtype=np.float32)  # linear light
BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], dtype=np.float32)
PQ_CONSTANTS = (2610 / 16384, 2523 / 4096 * 128,
                3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32)  # SMPTE ST 2084: m1 m2 c1-c3
HLG_ABC = (0.17883277, 0.28466892, 0.55991073)  # BT.2100 HLG's a, b, c
_M1, _M2, _C1, _C2, _C3 = PQ_CONSTANTS


def hdr_metadata(frame: av.VideoFrame) -> HdrMetadata | None:
    """The frame's side data (decoders attach it to the frames it came with), or None."""
    mastering = _side_data(frame, "MASTERING_DISPLAY_METADATA")
    light = _side_data(frame, "CONTENT_LIGHT_LEVEL")
    if not mastering and not light:
        return None
    primaries = white = luminance = None
    if len(mastering) >= _MASTERING.size:
        values = _MASTERING.unpack_from(mastering)
        ratios = [values[i] / values[i + 1] if values[i + 1] else 0.0
                  for i in range(0, 20, 2)]
        has_primaries, has_luminance = values[20], values[21]
        if has_primaries:
            primaries = ((ratios[0], ratios[1]), (ratios[2], ratios[3]),
                         (ratios[4], ratios[5]))
            white = (ratios[6], ratios[7])
        if has_luminance:
            luminance = (ratios[8], ratios[9])
    max_cll = max_fall = 0
    if len(light) >= _LIGHT_LEVEL.size:
        max_cll, max_fall = _LIGHT_LEVEL.unpack_from(light)
    return HdrMetadata(primaries, white, luminance, max_cll, max_fall)


def _side_data(frame: av.VideoFrame, kind: str) -> bytes:
    data = frame.side_data.get(kind)
    return bytes(typing.cast(typing.SupportsBytes, data)) if data is not None else b""


def _pq_eotf(codes: np.ndarray) -> np.ndarray:
    """ST 2084: PQ codes in [0, 1] -> cd/m²."""
    e = np.maximum(codes, 0) ** (1 / _M2)
    return np.asarray(10000.0 * (np.maximum(e - _C1, 0) / (_C2 - _C3 * e)) ** (1 / _M1),
                      dtype=np.float32)


@functools.cache
def _pq_to_nits() -> np.ndarray:
    """ST 2084's EOTF for every 16-bit code value."""
    return _pq_eotf(np.linspace(0.0, 1.0, 65536, dtype=np.float64))


def _nits_to_pq(nits: np.ndarray | float) -> np.ndarray:
    y = (np.asarray(nits, dtype=np.float32) / 10000.0) ** _M1
    return np.asarray(((_C1 + _C2 * y) / (1 + _C3 * y)) ** _M2, dtype=np.float32)


@functools.cache
def _hlg_to_scene() -> np.ndarray:
    """BT.2100 HLG's inverse OETF for every 16-bit code value (scene light, 0..1)."""
    a, b, c = HLG_ABC
    e = np.linspace(0.0, 1.0, 65536, dtype=np.float64)
    low = e * e / 3
    high = (np.exp((np.maximum(e, 0.5) - c) / a) + b) / 12
    return np.where(e <= 0.5, low, high).astype(np.float32)


def _display_light(rgb48: np.ndarray, transfer: int) -> np.ndarray:
    """Linear BT.2020 RGB in cd/m² from PQ or HLG code values."""
    if transfer == PQ:
        return _pq_to_nits()[rgb48]
    scene = _hlg_to_scene()[rgb48]
    luma = np.maximum(scene @ BT2020_LUMA, 1e-6)[..., None]
    return HLG_DISPLAY_NITS * luma ** 0.2 * scene  # OOTF, system gamma 1.2


def _eetf(nits: np.ndarray, peak_nits: float) -> np.ndarray:
    """BT.2390's EETF: identity below the knee, a Hermite roll-off above it that brings
    ``peak_nits`` down to SDR's white."""
    source_peak = _nits_to_pq(peak_nits)
    e1 = _nits_to_pq(nits) / source_peak
    max_lum = min(float(_nits_to_pq(SDR_WHITE_NITS) / source_peak), 1.0)
    knee = 1.5 * max_lum - 0.5
    t = np.clip((e1 - knee) / max(1 - knee, 1e-6), 0, 1)
    spline = ((2 * t**3 - 3 * t**2 + 1) * knee + (t**3 - 2 * t**2 + t) * (1 - knee)
              + (-2 * t**3 + 3 * t**2) * max_lum)
    return _pq_eotf(np.where(e1 < knee, e1, spline) * source_peak)


_GAIN_STEPS, _LOG_LOW, _LOG_HIGH = 4096, -4.0, 4.0  # 1e-4 .. 1e4 cd/m², log-spaced


@functools.cache
def _gain_table(peak_nits: float) -> np.ndarray:
    """The factor to SDR for a brightest channel of 10**(low + i·step) cd/m²: the EETF as
    one lookup."""
    nits = np.logspace(_LOG_LOW, _LOG_HIGH, _GAIN_STEPS).astype(np.float32)
    return np.asarray(_eetf(nits, peak_nits) / nits / SDR_WHITE_NITS, dtype=np.float32)


@functools.cache
def _sdr_encode() -> np.ndarray:
    """Linear 0..1 (in 1/65535 steps) -> 8-bit BT.709 code (gamma 2.4)."""
    return np.round(np.linspace(0, 1, 65536) ** (1 / 2.4) * 255).astype(np.uint8)


def tone_map(rgb48: np.ndarray, transfer: int, peak_nits: float = DEFAULT_PEAK_NITS
             ) -> np.ndarray:
    """H×W×3 uint16 full-range BT.2020 RGB coded with ``transfer`` (PQ or HLG) -> H×W×3 uint8
    full-range BT.709 RGB (gamma 2.4), ``peak_nits`` mapped to SDR white."""
    if transfer not in HDR_TRANSFERS:
        raise ValueError(f"tone_map takes PQ or HLG pictures, not transfer {transfer}")
    linear = cv2.transform(_display_light(rgb48, transfer), BT2020_TO_BT709)
    np.maximum(linear, 0, out=linear)
    peak = HLG_DISPLAY_NITS if transfer == HLG else max(peak_nits, SDR_WHITE_NITS)
    brightest = np.maximum(np.maximum(linear[..., 0], linear[..., 1]), linear[..., 2])
    np.log10(np.maximum(brightest, 10**_LOG_LOW), out=brightest)
    steps = (brightest - _LOG_LOW) * ((_GAIN_STEPS - 1) / (_LOG_HIGH - _LOG_LOW))
    index = np.clip(steps + 0.5, 0, _GAIN_STEPS - 1).astype(np.int32)
    linear *= _gain_table(peak)[index][..., None]
    np.clip(linear, 0, 1, out=linear)
    return _sdr_encode()[(linear * 65535).astype(np.uint16)]
