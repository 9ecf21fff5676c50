#!/usr/bin/env bash
# The first lease of a GPU machine: train hdm and hdm-s for the three tasks at once.
#
#   bash benchmarks/gpu_train.sh prepare [TRAIN]   # here, with the README's .venv (or PYTHON=...):
#                       # ../shared/train packed into train_data/ (JPEG, under 54 MB)
#   bash benchmarks/gpu_train.sh run               # there (carry train_data); results in $OUT
#   PYTHON=.venv/bin/python SECONDS_PER_MODEL=5 DEVICE=cpu SMALL=1 OUT=/tmp/t \
#       bash benchmarks/gpu_train.sh run       # a dry run on a CPU (the tests run one)
#
# One device command may run 600 s: the GPU tests get 90 s, training 360 s per model (six at
# once), the rest is start-up, the last validation and copying. The training needs only torch,
# numpy, OpenCV, safetensors and tqdm, which the GPU machine has: no wheels travel, so the
# streamer's GPU tests skip there (gpu_suite.sh runs them). $OUT gets 8 files: six checkpoints,
# train.log (the GPU tests' output first) and train_summary.json.
set -uo pipefail
cd "$(dirname "$0")/.."

prepare() {
    local train=${1:-../shared/train} python=${PYTHON:-.venv/bin/python}
    rm -rf train_data
    "$python" - "$train" <<'PY' || return 1
import sys
from pathlib import Path
import cv2
from benchmarks.gpu_train import RECIPES
from hdm.data import IMAGE_SUFFIXES
root, budget = Path(sys.argv[1]), 54e6
folders = sorted({f for r in RECIPES.values() for f in r["paired"] + r["clean"]})
files = [p for f in folders for p in sorted((root / f).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
for quality in (92, 88, 84, 80, 75):  # the best quality that fits the carry budget
    encoded = {p: cv2.imencode(".jpg", cv2.imread(str(p)), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
               for p in files}
    if sum(len(e) for e in encoded.values()) < budget:
        break
for path, data in encoded.items():
    target = Path("train_data") / path.relative_to(root).with_suffix(".jpg")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.tobytes())
print(f"{len(files)} images at JPEG quality {quality}")
PY
    du -sh train_data
}

run() {
    : "${OUT:?set OUT to a folder for the results}"
    mkdir -p "$OUT"
    export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
    local python=${PYTHON:-python3}
    {
        nvidia-smi 2>&1
        "$python" -c "import torch; print('torch', torch.__version__, 'cuda',
            torch.cuda.is_available() and torch.cuda.get_device_name())"
        echo "== GPU tests (limit 90 s)"
        timeout --signal=INT --kill-after=10 90 "$python" -m pytest -q -p no:cacheprovider \
            -rs tests/gpu
        echo "== GPU tests: exit $?"
    } > "$OUT/train.log" 2>&1
    "$python" -m benchmarks.gpu_train --data "${TRAIN_DATA:-train_data}" --out "$OUT" \
        --seconds "${SECONDS_PER_MODEL:-360}" --device "${DEVICE:-cuda}" \
        ${SMALL:+--small --val-every 2 --workers 0} 2>&1 | tee -a "$OUT/train.log"
}

case ${1:-} in
    prepare) shift; prepare "$@" ;;
    run) run ;;
    *) echo "usage: $0 prepare [TRAIN] | run" >&2; exit 2 ;;
esac
