"""Evaluation: PSNR/SSIM on paired sets for the input itself, the classical baseline and HDM,
and, for unpaired real photos, simple no-reference statistics plus contact sheets to look at.

    hdm-stream eval --task derain [--weights default|PATH] [--data ../shared/data] [--out DIR]

Writes ``DIR/TASK.md`` (the tables), ``DIR/TASK.json`` and ``DIR/TASK_<set>.jpg`` sheets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from hdm.data import IMAGE_SUFFIXES, find_pairs, read_rgb, to_tensor
from hdm.dcp import dark_channel
from hdm.metrics import psnr, psnr_y, ssim

__all__ = ["PAIRED_SETS", "UNPAIRED_SETS", "evaluate_task"]

# (label, folder under the data root) per task.
PAIRED_SETS: dict[str, list[tuple[str, str]]] = {
    "dehaze": [("O-HAZE #35", "dehaze/ohaze_subset")],
    "derain": [
        ("Rain100L (PReNet subset, 20)", "derain/rain100l_prenet_subset"),
        ("Rain100L (MFDNet, 3)", "derain/rain100l_mfdnet"),
        ("Rain100H (MSPFN subset, 10)", "derain/rain100h_mspfn_subset"),
        ("rainy video frames (OTMSCSC a1, 20)", "derain/video_otmscsc_a1"),
    ],
    "lowlight": [("LOL eval (10)", "lowlight/lol_eval10")],
}
UNPAIRED_SETS: dict[str, list[tuple[str, str]]] = {
    "dehaze": [("real hazy photos (16)", "dehaze/real_hazy_classic")],
    "derain": [("real rainy photos (SIRR)", "derain/real_rainy_sirr")],
    "lowlight": [("DICM", "lowlight/dicm_subset"), ("LIME", "lowlight/lime_subset")],
}
_SHEET_WIDTH = 320


def _image(x: torch.Tensor) -> np.ndarray:
    return (x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


@dataclass
class _Scores:
    psnr: list[float]
    psnr_y: list[float]
    ssim: list[float]

    def add(self, out: torch.Tensor, target: torch.Tensor) -> None:
        self.psnr.append(psnr(out, target).item())
        self.psnr_y.append(psnr_y(out, target).item())
        self.ssim.append(ssim(out, target).item())

    def means(self) -> dict[str, float]:
        return {"psnr": float(np.mean(self.psnr)), "psnr_y": float(np.mean(self.psnr_y)),
                "ssim": float(np.mean(self.ssim)), "images": len(self.psnr)}


def _no_reference(x: torch.Tensor) -> dict[str, float]:
    """Statistics, not quality scores: brightness, RMS contrast, haze proxy (mean dark channel),
    colourfulness (Hasler & Süsstrunk) and edge density."""
    grey = x.mean(dim=1)
    r, g, b = x[0] * 255
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = torch.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * torch.sqrt(
        rg.mean() ** 2 + yb.mean() ** 2)
    edges = cv2.Canny((grey[0].numpy() * 255).astype(np.uint8), 100, 200)
    return {"brightness": grey.mean().item(), "contrast": grey.std().item(),
            "dark_channel": dark_channel(x, 15).mean().item(),
            "colourfulness": colourful.item(), "edge_density": float((edges > 0).mean())}


def _sheet_row(images: list[np.ndarray]) -> np.ndarray:
    height = round(images[0].shape[0] * _SHEET_WIDTH / images[0].shape[1])
    return np.concatenate([cv2.resize(i, (_SHEET_WIDTH, height), interpolation=cv2.INTER_AREA)
                           for i in images], axis=1)


def _write_sheet(rows: list[np.ndarray], labels: list[str], path: Path) -> None:
    sheet = np.concatenate(rows, axis=0)
    for i, label in enumerate(labels):
        cv2.putText(sheet, label, (i * _SHEET_WIDTH + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 0), 2, cv2.LINE_AA)
    cv2.imwrite(str(path), np.ascontiguousarray(sheet[..., ::-1]),
                [cv2.IMWRITE_JPEG_QUALITY, 90])


def evaluate_task(
    task: str,
    methods: dict[str, nn.Module],
    data_root: Path,
    out_dir: Path,
    *,
    progress: Callable[[str], None] = print,
) -> dict[str, object]:
    """Scores of ``input`` and every method on the task's paired sets, statistics and sheets on
    its unpaired sets; writes Markdown and JSON into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ["input", *methods]
    report: dict[str, object] = {"task": task, "paired": {}, "unpaired": {}}
    paired: dict[str, dict[str, dict[str, float]]] = {}
    for label, folder in PAIRED_SETS[task]:
        root = data_root / folder
        if not root.is_dir():
            progress(f"skipping {label}: {root} not found")
            continue
        scores = {name: _Scores([], [], []) for name in names}
        sheet: list[np.ndarray] = []
        for source, target in find_pairs(root):
            x, y = (to_tensor(read_rgb(p)).unsqueeze(0) for p in (source, target))
            outputs = {"input": x, **{n: _run(m, x) for n, m in methods.items()}}
            for name, out in outputs.items():
                scores[name].add(out, y)
            if len(sheet) < 4:
                sheet.append(_sheet_row([_image(o) for o in outputs.values()] + [_image(y)]))
        paired[label] = {name: s.means() for name, s in scores.items()}
        _write_sheet(sheet, [*names, "target"], out_dir / f"{task}_{_slug(label)}.jpg")
        progress(f"{label}: " + ", ".join(f"{n} {v['psnr']:.2f} dB" for n, v in
                                         paired[label].items()))
    report["paired"] = paired
    unpaired: dict[str, dict[str, dict[str, float]]] = {}
    for label, folder in UNPAIRED_SETS[task]:
        root = data_root / folder
        if not root.is_dir():
            continue
        stats: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        sheet = []
        for path in sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            x = to_tensor(read_rgb(path)).unsqueeze(0)
            outputs = {"input": x, **{n: _run(m, x) for n, m in methods.items()}}
            for name, out in outputs.items():
                stats[name].append(_no_reference(out))
            if len(sheet) < 6:
                sheet.append(_sheet_row([_image(o) for o in outputs.values()]))
        unpaired[label] = {n: {k: float(np.mean([s[k] for s in v])) for k in v[0]}
                           for n, v in stats.items() if v}
        _write_sheet(sheet, names, out_dir / f"{task}_{_slug(label)}.jpg")
    report["unpaired"] = unpaired
    (out_dir / f"{task}.json").write_text(json.dumps(report, indent=2))
    (out_dir / f"{task}.md").write_text(_markdown(task, names, paired, unpaired))
    return report


@torch.no_grad()
def _run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(x).float().clamp(0, 1)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.split(" (")[0]).strip("_").lower()


def _markdown(task: str, names: list[str], paired: dict[str, dict[str, dict[str, float]]],
              unpaired: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"### {task}: paired sets (PSNR RGB / PSNR Y / SSIM)", "",
             "| set | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, by_method in paired.items():
        cells = [f"{m['psnr']:.2f} / {m['psnr_y']:.2f} / {m['ssim']:.3f}"
                 for m in by_method.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if unpaired:
        lines += ["", f"### {task}: unpaired real photos (statistics, not quality scores)", "",
                  "| set | method | brightness | contrast | dark channel | colourfulness | "
                  "edge density |", "|---|---|---|---|---|---|---|"]
        for label, by_method in unpaired.items():
            for name, s in by_method.items():
                lines.append(f"| {label} | {name} | {s['brightness']:.3f} | {s['contrast']:.3f} "
                             f"| {s['dark_channel']:.3f} | {s['colourfulness']:.1f} | "
                             f"{s['edge_density']:.3f} |")
    return "\n".join(lines) + "\n"
