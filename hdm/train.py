"""Training HDM: L1 + (1 - SSIM) + a colour term, AdamW with warm-up and cosine decay,
checkpoint and resume.

    hdm-stream train --task derain --paired DIR [DIR ...] [--clean DIR ...] --out derain.safetensors

The DCP masks are made by the model on the training device in each step. bf16 autocast on a
GPU. The colour term is the mean angle between output and target RGB vectors (1 - cosine), which
brightness alone cannot lower: it is what keeps hue when a dark picture is brightened. ``init``
starts from a checkpoint's weights (tensors whose shape changed, such as a head with another
output mode, keep their initialisation). ``reduced_scales`` trains the network as the engine
runs it at a reduced inference size: each step the crop is scaled by one of them (drawn at
random), enhanced, and the result fitted back to the full crop (hdm.upsample), where the loss
is taken. Every ``val_every`` steps PSNR/SSIM on the held-out
pairs are measured, and the best weights are what is saved. Seeds are fixed; ``--resume``
continues a run from its state file.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from tqdm import tqdm

from hdm.checkpoint import load_checkpoint, save_checkpoint
from hdm.data import DEGRADATIONS, PairedImages, SyntheticPairs
from hdm.dcp import MaskMode
from hdm.errors import ModelConfigError
from hdm.metrics import psnr, ssim
from hdm.model import HDM, OUTPUTS, TASKS, OutputMode
from hdm.presets import PRESETS
from hdm.upsample import FITS, Fit, enhance_reduced

__all__ = ["TrainConfig", "colour_loss", "train"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Paths are folders; ``paired`` in the layouts hdm.data reads."""

    task: str
    out: Path
    paired: list[Path] = field(default_factory=list)
    clean: list[Path] = field(default_factory=list)
    preset: str = "hdm-s"
    mask_mode: MaskMode = "soft"
    output: OutputMode = "image"
    init: Path | None = None
    steps: int = 2000
    batch: int = 8
    crop: int = 96
    lr: float = 5e-4
    warmup: int = 100
    ssim_weight: float = 0.2
    colour_weight: float = 0.0
    real_weight: float = 1.0
    val_pairs: int = 12  # a choice among checkpoints made on 4 pictures was noise
    val_every: int = 250
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    time_limit_s: float | None = None
    workers: int = 0
    reduced_scales: tuple[float, ...] = ()
    fit: Fit = "channel"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ModelConfigError(f"task must be one of {TASKS}, got {self.task!r}")
        if not self.paired and not self.clean:
            raise ModelConfigError("give paired folders (--paired) and/or clean images (--clean)")
        if not self.out.parent.is_dir():  # found before training, not at the first save
            raise ModelConfigError(f"the folder of {self.out} does not exist")
        if self.output not in OUTPUTS:
            raise ModelConfigError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.colour_weight < 0 or self.ssim_weight < 0:
            raise ModelConfigError("loss weights must be >= 0")
        if self.real_weight <= 0:
            raise ModelConfigError(f"real_weight must be > 0, got {self.real_weight}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ModelConfigError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if any(not 0 < scale <= 1 for scale in self.reduced_scales):
            raise ModelConfigError(f"reduced_scales must be in (0, 1], got {self.reduced_scales}")
        if self.val_pairs < 0:
            raise ModelConfigError(f"val_pairs must be >= 0, got {self.val_pairs}")
        if self.fit not in FITS:
            raise ModelConfigError(f"fit must be one of {FITS}, got {self.fit!r}")

    def forward(self, model: HDM, x: torch.Tensor, scale: float | None) -> torch.Tensor:
        """What training and validation score: the model on the full crop, or at ``scale``
        with its effect fitted back (the engine's reduced inference size)."""
        return model(x) if scale is None else enhance_reduced(model, x, scale, fit=self.fit)


def colour_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(angle) between output and target RGB vectors, per image (B,)."""
    cosine = torch.nn.functional.cosine_similarity(out, target, dim=1, eps=1e-4)
    return (1 - cosine).flatten(1).mean(dim=1)


def _initialise(model: HDM, path: Path) -> None:
    """Copy every tensor of ``path``'s weights whose name and shape ``model`` shares."""
    source = load_checkpoint(path).model.state_dict()
    own = model.state_dict()
    kept = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict({**own, **kept})
    log.info("initialised from %s: %d of %d tensors (%s left as initialised)", path,
             len(kept), len(own), sorted(set(own) - set(kept)) or "none")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _datasets(cfg: TrainConfig) -> tuple[Dataset[Any], PairedImages | None]:
    """Training set (paired crops + synthetic crops) and the held-out validation pairs."""
    parts: list[Dataset[Any]] = []
    validation = None
    synthetic = (SyntheticPairs(cfg.clean, DEGRADATIONS[cfg.task], crop=cfg.crop,
                                seed=cfg.seed + 1) if cfg.clean else None)
    if cfg.paired:
        paired = PairedImages(cfg.paired, crop=cfg.crop, augment=True, seed=cfg.seed)
        held_out = min(cfg.val_pairs, len(paired.images) // 5)
        order = np.random.default_rng(cfg.seed).permutation(len(paired.images))
        validation = PairedImages(cfg.paired)
        validation.images = [validation.images[i] for i in order[:held_out]]
        paired.images = [paired.images[i] for i in order[held_out:]]
        # Real pairs at least as often as synthetic ones (``real_weight`` times as often),
        # however few they are.
        share = cfg.real_weight * len(synthetic or []) / len(paired.images)
        paired.repeat = max(1, round(share))
        parts.append(paired)
    if synthetic is not None:
        parts.append(synthetic)
    return ConcatDataset(parts), validation if validation and validation.images else None


def _lr_factor(cfg: TrainConfig, step: int, seconds: float) -> float:
    """Linear warm-up, then cosine decay over the run: its steps, or its time limit when that
    comes first (a run with a wall-clock budget still ends at a low learning rate)."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.time_limit_s is not None:
        progress = max(progress, seconds / cfg.time_limit_s)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def evaluate_pairs(model: HDM, pairs: PairedImages, device: torch.device,
                   cfg: TrainConfig | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM (RGB) of ``model`` on whole images (with ``cfg.reduced_scales``: the
    mean over those scales of the reduced path)."""
    model.eval()
    scales: tuple[float | None, ...] = (cfg.reduced_scales if cfg and cfg.reduced_scales
                                        else (None,))
    scores = []
    for i in range(len(pairs)):
        degraded, clean = (t.unsqueeze(0).to(device) for t in pairs[i])
        for scale in scales:
            out = (model(degraded) if cfg is None else cfg.forward(model, degraded, scale)
                   ).clamp(0, 1)
            scores.append((psnr(out, clean).item(), ssim(out, clean).item()))
    model.train()
    values = np.array(scores)
    return {"psnr": float(values[:, 0].mean()), "ssim": float(values[:, 1].mean())}


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) training; writes ``cfg.out`` (best weights) and ``cfg.out``.state.pt."""
    _seed_everything(cfg.seed)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if cfg.device == "auto" else cfg.device))
    model = HDM(replace(PRESETS[cfg.preset], mask_mode=cfg.mask_mode,
                        lowlight_masks=cfg.task == "lowlight", output=cfg.output))
    if cfg.init is not None and not (cfg.resume and cfg.out.with_suffix(".state.pt").is_file()):
        _initialise(model, cfg.init)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999),
                                  weight_decay=0.0)
    state_path = cfg.out.with_suffix(".state.pt")
    step, best, history, spent = 0, -1.0, [], 0.0
    if cfg.resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, best, history = state["step"], state["best"], json.loads(state["history"])
        spent = float(state.get("seconds", 0.0))
        torch.set_rng_state(state["rng"])
        log.info("resumed %s at step %d", state_path, step)

    data, validation = _datasets(cfg)
    generator = torch.Generator().manual_seed(cfg.seed + step)
    loader = DataLoader(data, batch_size=cfg.batch, shuffle=True, drop_last=True,
                        generator=generator, num_workers=cfg.workers,
                        persistent_workers=cfg.workers > 0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    started = time.monotonic() - spent
    bar = tqdm(total=cfg.steps, initial=step, unit="step", desc=f"train {cfg.task}")
    batches = iter(loader)
    first_step, first_time = step, time.monotonic()
    scales = random.Random(cfg.seed + step)  # which reduced scale each step trains
    out_of_time = False
    while step < cfg.steps and not out_of_time:
        try:
            degraded, clean = next(batches)
        except StopIteration:
            batches = iter(loader)
            continue
        degraded, clean = degraded.to(device), clean.to(device)
        scale = scales.choice(cfg.reduced_scales) if cfg.reduced_scales else None
        with autocast:
            out = cfg.forward(model, degraded, scale)
        out = out.float()
        loss = ((out - clean).abs().mean() + cfg.ssim_weight * (1 - ssim(out, clean).mean())
                + cfg.colour_weight * colour_loss(out, clean).mean())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        seconds = time.monotonic() - started
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * _lr_factor(cfg, step, seconds)
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        out_of_time = cfg.time_limit_s is not None and seconds >= cfg.time_limit_s
        if step % cfg.val_every == 0 or step == cfg.steps or out_of_time:
            scores = evaluate_pairs(model, validation, device, cfg) if validation else {}
            rate = (step - first_step) / max(time.monotonic() - first_time, 1e-9)
            history.append({"step": step, "loss": loss.item(), "seconds": round(seconds, 1),
                            "steps_per_s": round(rate, 3), **scores})
            score = scores.get("psnr", -loss.item())
            if score > best:
                best = score
                save_checkpoint(model, cfg.out, task=cfg.task,
                                metrics={"validation": scores, "step": step})
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "step": step, "best": best, "seconds": seconds,
                        "history": json.dumps(history), "rng": torch.get_rng_state()},
                       state_path)
            bar.write(f"step {step}: loss {loss.item():.4f} {scores}")
    bar.close()
    summary = {"config": {k: str(v) for k, v in asdict(cfg).items()}, "history": history,
               "best_validation_psnr": best, "seconds": round(time.monotonic() - started, 1),
               "device": str(device)}
    cfg.out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    return summary
