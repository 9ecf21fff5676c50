"""HDR through the model: PSNR on SDR test pairs carried into PQ and HLG (BT.1886 display
light, SDR white at 203 cd/m², BT.709 -> BT.2020 primaries), enhanced as an HDR file's frames
are, carried back exactly, against the same pictures enhanced as SDR. Columns: the input; the
SDR path; HDR codes fed to the model as they are; HDR codes in SDR's range (what hdm-stream
does, streamer/engine/signal_range.py), for PQ and for HLG.

    python -m benchmarks.bench_hdr --data ../shared/data --limit 5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from hdm.data import read_rgb
from streamer.engine import EngineBatch
from streamer.engine.settings import Task
from streamer.engine.temporal import TemporalState
from streamer.enhancer import Enhancer
from streamer.frames import HLG, PQ, Layout
from streamer.media.hdr import (
    BT2020_TO_BT709,
    HLG_ABC,
    SDR_WHITE_NITS,
    _hlg_to_scene,
    _nits_to_pq,
    _pq_to_nits,
)

_TO_BT2020 = np.linalg.inv(BT2020_TO_BT709).astype(np.float32)
_A, _B, _C = HLG_ABC
# task: (folder, input subfolder, target subfolder, input suffix, target suffix)
SETS: dict[Task, tuple[str, str, str, str, str]] = {
    "dehaze": ("dehaze/ohaze_subset", "hazy", "gt", "_hazy", "_GT"),
    "lowlight": ("lowlight/lol_eval10", "low", "high", "", ""),
}


def _display(rgb8: np.ndarray) -> np.ndarray:
    """BT.2020 display light relative to SDR white of an 8-bit BT.709 picture."""
    light = (rgb8.astype(np.float32) / 255) ** 2.4
    return np.maximum(cv2.transform(light, _TO_BT2020), 0)


def _sdr(relative: np.ndarray) -> np.ndarray:
    light = cv2.transform(relative, BT2020_TO_BT709)
    return np.round(np.clip(light, 0, 1) ** (1 / 2.4) * 255).astype(np.uint8)


def to_pq(rgb8: np.ndarray) -> np.ndarray:
    return np.round(_nits_to_pq(_display(rgb8) * SDR_WHITE_NITS) * 65535).astype(np.uint16)


def from_pq(rgb16: np.ndarray) -> np.ndarray:
    return _sdr(_pq_to_nits()[rgb16] / SDR_WHITE_NITS)


def to_hlg(rgb8: np.ndarray) -> np.ndarray:
    """SDR white lands at HLG 0.75 (BT.2408); scene light by the inverse OOTF per channel."""
    scene = (_display(rgb8) * SDR_WHITE_NITS / 1000) ** (1 / 1.2)
    code = np.where(scene <= 1 / 12, np.sqrt(3 * scene),
                    _A * np.log(np.maximum(12 * scene - _B, 1e-9)) + _C)
    return np.round(np.clip(code, 0, 1) * 65535).astype(np.uint16)


def from_hlg(rgb16: np.ndarray) -> np.ndarray:
    return _sdr(_hlg_to_scene()[rgb16] ** 1.2 * 1000 / SDR_WHITE_NITS)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / max(np.mean((a.astype(float) - b) ** 2), 1e-9)))


def pairs(data: Path, task: Task, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    folder, low, high, low_suffix, high_suffix = SETS[task]
    found = []
    for path in sorted((data / folder / low).iterdir())[:limit]:
        target = data / folder / high / path.name.replace(low_suffix, high_suffix)
        x, y = read_rgb(path), read_rgb(target)
        scale = min(1.0, 800 / max(x.shape[:2]))
        x = cv2.resize(x, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        y = cv2.resize(y, (x.shape[1], x.shape[0]), interpolation=cv2.INTER_AREA)
        found.append((np.ascontiguousarray(x), np.ascontiguousarray(y)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/bench_hdr.json"))
    args = parser.parse_args()
    rows = []
    print("| task | model | pictures | input | SDR path | PQ as codes | PQ in SDR range | "
          "HLG as codes | HLG in SDR range |\n|---|---|---|---|---|---|---|---|---|")
    for task in SETS:
        for model in ("dcp", "auto"):
            enhancer = Enhancer(task, model=model, smoothing=False, stabiliser=False,
                                device="cpu")

            def mapped(image: np.ndarray, transfer: int, e: Enhancer = enhancer) -> np.ndarray:
                batch = EngineBatch([image], Layout.RGB48, transfers=[transfer])
                return e.engine.submit(batch, [TemporalState()]).result()[0]

            scores = []
            for x, y in pairs(args.data, task, args.limit):
                scores.append([psnr(x, y), psnr(enhancer.enhance(x)[0], y),
                               psnr(from_pq(enhancer.enhance(to_pq(x))[0]), y),
                               psnr(from_pq(mapped(to_pq(x), PQ)), y),
                               psnr(from_hlg(enhancer.enhance(to_hlg(x))[0]), y),
                               psnr(from_hlg(mapped(to_hlg(x), HLG)), y)])
            mean = np.mean(scores, axis=0)
            row = {"task": task, "model": model, "pictures": len(scores),
                   **dict(zip(("input", "sdr", "pq_codes", "pq_sdr_range", "hlg_codes",
                               "hlg_sdr_range"), (round(float(v), 2) for v in mean),
                              strict=True))}
            rows.append(row)
            print(f"| {task} | {model} | {len(scores)} | "
                  + " | ".join(f"{v:.2f}" for v in mean) + " |", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"psnr_db": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
