"""``hdm-stream train`` and ``hdm-stream eval``: HDM weights for a task, and their PSNR/SSIM
against the input and the classical method on paired sets (both hdm's own code)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import hdm
from hdm.model import OUTPUTS, TASKS
from hdm.upsample import FITS, FittedToInput
from streamer.cli.common import make_folder
from streamer.engine.settings import check_fit_window, parse_fit_window, resolve_fit_window
from streamer.errors import ConfigError

__all__ = ["add_eval_parser", "add_train_parser", "evaluate", "train"]


def add_train_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train HDM weights for a task")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write (.safetensors)")
    p.add_argument("--paired", nargs="*", type=Path, default=[], help="paired folders")
    p.add_argument("--clean", nargs="*", type=Path, default=[],
                   help="folders of clean images to degrade synthetically")
    p.add_argument("--preset", default="hdm-s", choices=tuple(hdm.PRESETS))
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--val-pairs", type=int, default=12,
                   help="paired pictures held out to choose the saved weights on (at most a "
                        "fifth of them)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--output", default="image", choices=OUTPUTS,
                   help="what the head predicts: the image (the paper), a residual added to the "
                        "input, or a per-pixel gain plus a small correction (keeps hue)")
    p.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    p.add_argument("--colour-weight", type=float, default=0.0,
                   help="weight of the colour (RGB angle) term in the loss")
    p.add_argument("--resume", action="store_true", help="continue from OUT.state.pt")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop after this wall-clock time (the learning rate decays to fit it)")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes")
    p.add_argument("--real-weight", type=float, default=1.0,
                   help="how many times as often real pairs are drawn as synthetic ones")
    p.add_argument("--reduced-scales", nargs="*", type=float, default=[], metavar="SCALE",
                   help="train for a reduced inference size: each step the crop is scaled by "
                        "one of these (e.g. 0.125 0.25) and the result fitted back to it")
    p.add_argument("--fit", default="channel", choices=FITS,
                   help="the fit of --reduced-scales (as the engine's --fit)")


def add_eval_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("eval", help="PSNR/SSIM of input, classical and HDM on paired sets")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--model", default="auto", choices=("auto", *hdm.PRESETS),
                   help="preset of the weights (auto: the shipped one)")
    p.add_argument("--weights", default="default", help="checkpoint path or 'default'")
    p.add_argument("--data", type=Path, default=Path("../shared/data"),
                   help="root of the evaluation sets")
    p.add_argument("--out", type=Path, default=Path("out/eval"))
    p.add_argument("--fit-window", default="auto", metavar="auto|F",
                   help="dehazing's output fitted to its input in windows of this radius (a "
                        "fraction of the picture's longer side, or 1/N), as the engine does "
                        "(auto: 1/32 for dehaze; 0: the network's own output)")


def train(args: argparse.Namespace) -> int:
    from hdm.train import TrainConfig
    from hdm.train import train as run_training

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = run_training(TrainConfig(
        task=args.task, out=args.out, paired=args.paired, clean=args.clean,
        preset=args.preset, steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr,
        val_every=args.val_every, val_pairs=args.val_pairs, seed=args.seed, device=args.device,
        resume=args.resume, output=args.output, init=args.init, colour_weight=args.colour_weight,
        time_limit_s=args.time_limit, workers=args.workers, real_weight=args.real_weight,
        reduced_scales=tuple(args.reduced_scales), fit=args.fit,
    ))
    print(f"best validation PSNR {summary['best_validation_psnr']:.2f} dB; wrote {args.out}",
          file=sys.stderr)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from hdm.evaluate import evaluate_task

    given = parse_fit_window(args.fit_window, "--fit-window")
    check_fit_window(args.task, given, "--fit-window")
    window = resolve_fit_window(args.task, given)
    if not args.data.is_dir():
        raise ConfigError(f"evaluation data not found: {args.data} (give --data DIR)")
    make_folder(args.out)
    network = hdm.resolve(args.task, args.model, args.weights)
    if window:  # as the engine runs it
        network = FittedToInput(network, window)
    methods = {"classical": hdm.resolve(args.task, "dcp"), "HDM": network}
    evaluate_task(args.task, methods, args.data, args.out,
                  progress=lambda line: print(line, file=sys.stderr))
    print((args.out / f"{args.task}.md").read_text())
    return 0
