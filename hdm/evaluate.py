"""Evaluation: PSNR/SSIM on paired sets for the input itself, the classical baseline and HDM,
and, for unpaired real photos, simple no-reference statistics plus contact sheets to look at.

    hdm-stream eval --task derain [--weights default|PATH] [--data ../shared/data] [--out DIR]

``--data`` is the team's data root (the sets named below), or any folder of paired sets: each
folder under it (itself included, three levels deep) that holds a recognised pair of subfolders
(see hdm.data) is a set. Writes ``DIR/TASK.md`` (the tables), ``DIR/TASK.json`` (per-photo
statistics included) and ``DIR/TASK_<set>.jpg`` contact sheets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from hdm.data import IMAGE_SUFFIXES, find_pairs, is_paired_folder, read_rgb, to_tensor
from hdm.defects import defects
from hdm.errors import ModelConfigError
from hdm.metrics import psnr, psnr_y, ssim
from hdm.photo_stats import describe, fidelity

__all__ = ["CLEAR_SETS", "PAIRED_SETS", "UNPAIRED_SETS", "evaluate_task", "find_sets"]

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
CLEAR_SETS: list[tuple[str, str]] = [  # clean targets: pictures no task should change much
    ("O-HAZE #35 clear", "dehaze/ohaze_subset/gt"),
    ("Rain100L clean (PReNet subset)", "derain/rain100l_prenet_subset/gt"),
    ("LOL normal light", "lowlight/lol_eval10/high"),
]
CLEAR_BOUND_DB = 30.0
"""Do no harm: a clear picture's output within this PSNR of the picture itself."""
_CLEAR_LIMIT = 10  # pictures per clear set
_SHEET_WIDTH = 320
_SEARCH_DEPTH = 3
_CALIBRATED = ("neutral_cast", "blotches", "streaks_left")
Sets = list[tuple[str, Path]]


def find_sets(task: str, data_root: Path) -> tuple[Sets, Sets]:
    """(paired, unpaired) sets as (label, folder): the task's named sets where ``data_root`` has
    any of them, otherwise every paired folder under it. Raises ModelConfigError when there is
    none."""
    paired = [(label, data_root / f) for label, f in PAIRED_SETS[task] if (data_root / f).is_dir()]
    unpaired = [(label, data_root / f) for label, f in UNPAIRED_SETS[task]
                if (data_root / f).is_dir()]
    if paired or unpaired:
        return paired, unpaired
    found = [data_root] if is_paired_folder(data_root) else []
    level = [data_root]
    for _ in range(_SEARCH_DEPTH):
        level = [c for d in level for c in sorted(d.iterdir()) if c.is_dir()]
        found += [d for d in level if is_paired_folder(d)]
    if not found:
        raise ModelConfigError(
            f"no evaluation set in {data_root}: expected the team's data root or folders "
            "holding a pair of subfolders such as hazy/ + gt/, rainy/ + norain/, low/ + high/"
        )
    return [(str(d.relative_to(data_root)) if d != data_root else d.name, d) for d in found], []


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
    paired_defects: dict[str, dict[str, dict[str, float]]] = {}
    paired_sets, unpaired_sets = find_sets(task, data_root)
    for label, root in paired_sets:
        scores = {name: _Scores([], [], []) for name in names}
        measured: dict[str, list[dict[str, float]]] = {n: [] for n in [*methods, "target"]}
        sheet: list[np.ndarray] = []
        for source, target in find_pairs(root):
            x, y = (to_tensor(read_rgb(p)).unsqueeze(0) for p in (source, target))
            outputs = {"input": x, **{n: _run(m, x) for n, m in methods.items()}}
            for name, out in outputs.items():
                scores[name].add(out, y)
            for name, out in {**{n: outputs[n] for n in methods}, "target": y}.items():
                measured[name].append(defects(x, out))
            if len(sheet) < 4:
                sheet.append(_sheet_row([_image(o) for o in outputs.values()] + [_image(y)]))
        paired[label] = {name: s.means() for name, s in scores.items()}
        paired_defects[label] = {n: _means(v, _CALIBRATED) for n, v in measured.items() if v}
        _write_sheet(sheet, [*names, "target"], out_dir / f"{task}_{_slug(label)}.jpg")
        progress(f"{label}: " + ", ".join(f"{n} {v['psnr']:.2f} dB" for n, v in
                                         paired[label].items()))
    report["paired"] = paired
    report["paired_defects"] = paired_defects
    unpaired: dict[str, dict[str, dict[str, float]]] = {}
    photos: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for label, root in unpaired_sets:
        stats: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        sheet = []
        for path in sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            x = to_tensor(read_rgb(path)).unsqueeze(0)
            outputs = {"input": x, **{n: _run(m, x) for n, m in methods.items()}}
            for name, out in outputs.items():
                stats[name].append({"photo": path.name, **describe(out), **fidelity(x, out),
                                    **defects(x, out)})
            if len(sheet) < 6:
                sheet.append(_sheet_row([_image(o) for o in outputs.values()]))
        if not stats["input"]:
            continue
        photos[label] = stats
        unpaired[label] = {n: _means(v, [k for k in v[0] if k != "photo"])
                           for n, v in stats.items()}
        _write_sheet(sheet, names, out_dir / f"{task}_{_slug(label)}.jpg")
    report["unpaired"] = unpaired
    report["photos"] = photos
    clear = _clear(task, methods, data_root, out_dir)
    report["clear"] = clear
    (out_dir / f"{task}.json").write_text(json.dumps(report, indent=2))
    (out_dir / f"{task}.md").write_text(_markdown(task, names, paired, unpaired, photos)
                                        + _clear_markdown(task, clear)
                                        + _calibration_markdown(task, paired_defects))
    return report


def _clear(task: str, methods: dict[str, nn.Module], data_root: Path, out_dir: Path
           ) -> dict[str, dict[str, dict[str, float]]]:
    """Each method on clear pictures (the clean targets of every task's paired sets): how far
    from the picture it stays, and the defects it adds; a contact sheet per set."""
    clear: dict[str, dict[str, dict[str, float]]] = {}
    for label, folder in CLEAR_SETS:
        root = data_root / folder
        if not root.is_dir():
            continue
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
        sheet: list[np.ndarray] = []
        for path in paths[:_CLEAR_LIMIT]:
            x = to_tensor(read_rgb(path)).unsqueeze(0)
            outputs = {n: _run(m, x) for n, m in methods.items()}
            for name, out in outputs.items():
                rows[name].append(defects(x, out))
            if len(sheet) < 4:
                sheet.append(_sheet_row([_image(x)] + [_image(o) for o in outputs.values()]))
        if sheet:
            clear[label] = {n: _means(v, v[0]) for n, v in rows.items()}
            _write_sheet(sheet, ["clear input", *methods], out_dir / f"{task}_{_slug(label)}.jpg")
    return clear


def _clear_markdown(task: str, clear: dict[str, dict[str, dict[str, float]]]) -> str:
    if not clear:
        return ""
    lines = ["", f"### {task} on clear pictures (do no harm: PSNR to the input of at least "
             f"{CLEAR_BOUND_DB:.0f} dB)", "",
             "PSNR to input: how far the output strayed (dB); crushed: % of pixels above 5% "
             "grey put below 2%; blotches: % of flat pixels made 12 levels darker than their "
             "61×61 neighbourhood; neutral cast: colour added where the input is grey, levels.",
             "", "| set | method | PSNR to input | crushed % | blotches % | neutral cast |",
             "|---|---|---|---|---|---|"]
    for label, by_method in clear.items():
        for name, m in by_method.items():
            lines.append(f"| {label} | {name} | {m['psnr_to_input']:.2f} | "
                         f"{m['shadows_crushed']:.2f} | {m['blotches']:.2f} | "
                         f"{m['neutral_cast']:.1f} |")
    return "\n".join(lines) + "\n"


def _means(rows: Sequence[Mapping[str, Any]], keys: Iterable[str]) -> dict[str, float]:
    """Each key's mean over the rows (one per picture), a measure that is undefined on a
    picture (NaN) left out."""
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def _calibration_markdown(task: str, measured: dict[str, dict[str, dict[str, float]]]) -> str:
    """The defect measures of the unpaired table on the paired sets, the target included: what
    each reads on the ideal output says how far it can be taken as a bar."""
    lines = ["", f"### {task}: the defect measures on paired sets, the target included", "",
             "The same measures as on real photos, from each set's rainy, hazy or dark input to "
             "each method's output and to the clean target. A measure that reads the target as "
             "defective (streaks left far above a method's, say) ranks that method ahead of the "
             "ideal output, not as a person would.", "",
             "| set | method | neutral cast | blotches % | streaks left % |",
             "|---|---|---|---|---|"]
    for label, by_method in measured.items():
        lines += [f"| {label} | {name} | {m['neutral_cast']:.1f} | {m['blotches']:.2f} | "
                  f"{m['streaks_left']:.0f} |" for name, m in by_method.items()]
    return "\n".join(lines) + "\n"


@torch.no_grad()
def _run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(x).float().clamp(0, 1)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.split(" (")[0]).strip("_").lower()


def _worst_white_excess(stats: dict[str, list[dict[str, Any]]], name: str) -> str:
    """The largest per-photo excess of white-clipped pixels of ``name`` over the classical
    enhancer, in points (the photo named)."""
    if name in ("input", "classical") or "classical" not in stats:
        return ""
    excess = [(s["white"] - c["white"], s["photo"])
              for s, c in zip(stats[name], stats["classical"], strict=True)]
    points, photo = max(excess)
    return f"{points:+.1f} ({photo})"


def _markdown(task: str, names: list[str], paired: dict[str, dict[str, dict[str, float]]],
              unpaired: dict[str, dict[str, dict[str, float]]],
              photos: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    lines = [f"### {task}: paired sets (PSNR RGB / PSNR Y / SSIM)", "",
             "| set | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, by_method in paired.items():
        cells = [f"{m['psnr']:.2f} / {m['psnr_y']:.2f} / {m['ssim']:.3f}"
                 for m in by_method.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if unpaired:
        lines += ["", f"### {task}: unpaired real photos (statistics, not quality scores)", "",
                  "Means over the photos. Hue kept: % of clearly coloured input pixels whose hue "
                  "moved at most 15° and that are still coloured; white / black: % of pixels "
                  "clipped to white / crushed below 10 grey levels; cast: shift of the mean "
                  "CIELAB a*b*; worst white: the largest per-photo excess of white pixels over "
                  "the classical enhancer, in points.", "",
                  "Neutral cast: colour added where the input is grey, in levels; blotches: % of "
                  "flat pixels made 12 levels darker than their neighbourhood; streaks left: "
                  "rain-streak energy, % of the input's (hdm/defects.py).", "",
                  "| set | method | brightness | contrast | dark channel | colourfulness | "
                  "hue kept % | white % | black % | cast | worst white | neutral cast | "
                  "blotches % | streaks left % |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for label, by_method in unpaired.items():
            for name, s in by_method.items():
                lines.append(
                    f"| {label} | {name} | {s['brightness']:.3f} | {s['contrast']:.3f} "
                    f"| {s['dark_channel']:.3f} | {s['colourfulness']:.1f} | "
                    f"{s['hue_kept']:.1f} | {s['white']:.1f} | {s['black']:.1f} | "
                    f"{s['cast']:.1f} | {_worst_white_excess(photos[label], name)} | "
                    f"{s['neutral_cast']:.1f} | {s['blotches']:.2f} | {s['streaks_left']:.0f} |")
    return "\n".join(lines) + "\n"
