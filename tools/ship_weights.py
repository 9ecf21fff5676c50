"""Copy a trained checkpoint into hdm/weights/ with its model card.

    python tools/ship_weights.py --task derain --checkpoint train_runs/derain.safetensors \
        --training train_runs/derain.json --evaluation out/eval/derain.md \
        --data "..." --command "hdm-stream train ..."

Prints the file's SHA-256 and parameter count for its ``Weights`` entry in hdm/weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import hdm

WEIGHTS = Path(__file__).resolve().parents[1] / "hdm" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--training", type=Path, required=True, help="the run's .json summary")
    parser.add_argument("--evaluation", type=Path, required=True, help="hdm-stream eval's .md")
    parser.add_argument("--data", required=True, help="training data, in words")
    parser.add_argument("--command", action="append", required=True,
                        help="the command(s) that reproduce the run, in order")
    parser.add_argument("--device", default="the 2-core CPU development machine, without a GPU")
    parser.add_argument("--version", type=int, default=1, help="the file's version suffix")
    parser.add_argument("--reduced-evaluation", type=Path,
                        help="Markdown of the reduced inference sizes' scores (bench_realtime)")
    args = parser.parse_args()

    loaded = hdm.load_checkpoint(args.checkpoint)
    config = loaded.model.config
    name = f"{args.task}-{loaded.preset}-v{args.version}"
    target = WEIGHTS / f"{name}.safetensors"
    shutil.copyfile(args.checkpoint, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    parameters = sum(p.numel() for p in loaded.model.parameters())
    training = json.loads(args.training.read_text())
    reduced = ("" if args.reduced_evaluation is None else
               "\n## Measured at reduced inference sizes (`benchmarks/bench_realtime.py`)\n\n"
               + args.reduced_evaluation.read_text())
    history = training["history"]
    commands = "\n".join(args.command)
    run = training["config"]
    loss = f"L1 + {float(run['ssim_weight']):g}·(1 − SSIM)"
    if float(run.get("colour_weight", 0)):
        loss += f" + {float(run['colour_weight']):g}·(1 − cos) colour term"
    start = (f"started from `{Path(run['init']).name}`" if run.get("init", "None") != "None"
             else "from random initialisation")
    scales = run.get("reduced_scales", "()")
    if scales not in ("()", ""):
        start += (f", trained for reduced inference sizes (each crop scaled by one of "
                  f"{scales}, enhanced, and fitted back with the `{run.get('fit')}` fit; the "
                  "loss at full resolution)")
    card = f"""# {name}

HDM `{loaded.preset}` for **{args.task}**, {parameters:,} parameters, `{target.name}`
(SHA-256 `{digest}`).

- Architecture: width {config.width}, {config.groups} groups × {config.blocks} attention blocks,
  {config.regions} DCP regions, `{config.mask_mode}` masks (what the video pipeline runs),
  low-light masks {config.lowlight_masks}, output `{config.output}`
  {"" if config.output == "image" else "(not in the paper: see `HDMConfig.output`)"}.
- Input: RGB float in [0, 1], any size. Output: same.
- Trained on {args.device}: {history[-1]["step"]} steps of batch {run["batch"]} on
  {run["crop"]}×{run["crop"]} crops, {start}, {loss}, AdamW (lr {run["lr"]}, warm-up
  {run["warmup"]}, cosine decay), seed {run["seed"]}, {training["seconds"] / 60:.0f} minutes.
  The saved weights are the best validation PSNR on held-out training pairs
  ({loaded.metrics.get("validation", {}).get("psnr", float("nan")):.2f} dB at step
  {loaded.metrics.get("step")}).
- Data: {args.data}. No evaluation image was used for training.
- Licence: the weights are released with the code; the training data's terms are the original
  authors' (research / non-commercial), see `../shared/train/*/README.md`.

## Reproduce

```bash
{commands}
```

## Measured (`hdm-stream eval --task {args.task}` on ../shared/data)

{args.evaluation.read_text()}
{reduced}"""
    (WEIGHTS / f"{name}.md").write_text(card)
    print(f"{target.name}: sha256={digest} parameters={parameters} "
          f"steps={history[-1]['step']} validation={loaded.metrics.get('validation')}")


if __name__ == "__main__":
    main()
