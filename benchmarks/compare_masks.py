"""How often hdm.dcp's hard masks agree with the release's, and how fast each is.

    python benchmarks/compare_masks.py [--data ../shared/data] [--json out/compare_masks.json]

Runs both on the real hazy photos (and the O-HAZE pair) of the evaluation data and prints the
share of mask pixels in the same region, and the time per image of each implementation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.release_masks import release_masks
from hdm.data import IMAGE_SUFFIXES, read_rgb
from hdm.dcp import dcp_masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, default=Path("out/compare_masks.json"))
    args = parser.parse_args()
    folders = [args.data / "dehaze" / "real_hazy_classic",
               args.data / "dehaze" / "ohaze_subset" / "hazy"]
    rows = []
    paths = (p for f in folders for p in f.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for path in sorted(paths):
        rgb = read_rgb(path)
        rgb = rgb[: rgb.shape[0] // 4 * 4, : rgb.shape[1] // 4 * 4]
        started = time.perf_counter()
        theirs = release_masks(rgb)
        release_ms = (time.perf_counter() - started) * 1000
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        started = time.perf_counter()
        ours, _ = dcp_masks(x)
        ours_ms = (time.perf_counter() - started) * 1000
        same = float((ours[0].argmax(0).numpy() == theirs.argmax(0)).mean())
        near = float((np.abs(ours[0].argmax(0).numpy() - theirs.argmax(0)) <= 1).mean())
        rows.append({"image": path.name, "size": list(rgb.shape[:2]), "same_region": same,
                     "within_one_region": near, "release_ms": release_ms, "ours_ms": ours_ms})
        print(f"{path.name:<24} {rgb.shape[1]:>5}x{rgb.shape[0]:<5} same {same:6.1%}  "
              f"±1 {near:6.1%}  release {release_ms:7.1f} ms  ours {ours_ms:6.1f} ms")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in
            ("same_region", "within_one_region", "release_ms", "ours_ms")}
    print(f"mean: same region {mean['same_region']:.1%}, within one region "
          f"{mean['within_one_region']:.1%}; release {mean['release_ms']:.1f} ms, ours "
          f"{mean['ours_ms']:.1f} ms per image (CPU, {torch.get_num_threads()} threads)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "mean": mean}, indent=2))


if __name__ == "__main__":
    main()
