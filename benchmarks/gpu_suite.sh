#!/usr/bin/env bash
# Every GPU check of the project in one prepared run (parity tests, speed matrix, end-to-end
# pipeline, quality guard), sized for one short lease of a GPU machine.
#
#   bash benchmarks/gpu_suite.sh prepare [DATA]   # here, with the README's .venv (or PYTHON=...):
#                       # cp312 wheels of av and pyzmq into .whl/, the first pairs of each paired
#                       # set into device_data/
#   bash benchmarks/gpu_suite.sh run              # there (carry .whl and device_data); results in $OUT
#   bash benchmarks/gpu_suite.sh scale            # a second lease: the reduced inference size at
#                       # 1080p and 4K, 4/8/16 live 1080p25 cameras in one serve, segments of hdm
#   PYTHON=.venv/bin/python PLAN=cpu OUT=/tmp/suite bash benchmarks/gpu_suite.sh run
#                                                 # a dry run of the script on a CPU (~9 min)
#   SMOKE=1 PYTHON=... PLAN=cpu DATA=../shared/data OUT=... bash benchmarks/gpu_suite.sh run
#                                                 # every step, tiny (tests/benchmarks: ~2 min)
#
# The GPU machine has Python 3.12 with torch, numpy, OpenCV, PyYAML, safetensors and tqdm, but no
# PyAV or pyzmq, and cannot download: hence the wheels. Each step writes its log and JSON under
# $OUT as it goes and has its own time limit, so a slow step cannot take the others' results.
set -uo pipefail
cd "$(dirname "$0")/.."

prepare() {
    local data=${1:-../shared/data} pairs=6 python=${PYTHON:-.venv/bin/python}
    rm -rf .whl device_data
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d .whl av==18.1.0 pyzmq==27.3.0 || return 1
    "$python" - "$data" "$pairs" <<'EOF'
import shutil, sys
from pathlib import Path
from hdm.data import find_pairs
from hdm.evaluate import PAIRED_SETS
data, keep = Path(sys.argv[1]), int(sys.argv[2])
for sets in PAIRED_SETS.values():
    for _, folder in sets:
        for noisy, clean in find_pairs(data / folder)[:keep]:
            for path in (noisy, clean):
                target = Path("device_data") / path.relative_to(data)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
EOF
    du -sh .whl device_data
}

step() {  # step NAME SECONDS COMMAND...: run with a limit, log under $OUT, never abort the suite
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)" | tee -a "$OUT/summary.txt"
    local started=$SECONDS
    timeout --signal=INT --kill-after=20 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - started)) s" | tee -a "$OUT/summary.txt"
}

setup() {  # the wheels installed where needed, the machine described: sets $python
    : "${OUT:?set OUT to a folder for the results}"
    mkdir -p "$OUT"
    python=${PYTHON:-python3}
    if ! "$python" -c "import av, zmq" 2>/dev/null; then
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl || exit 1
    fi
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
    "$python" -c "import torch, av, zmq, cv2; print('torch', torch.__version__, 'av', av.__version__,
        'zmq', zmq.__version__, 'cv2', cv2.__version__, 'cuda', torch.cuda.is_available() and
        torch.cuda.get_device_name())" | tee "$OUT/summary.txt"
}

run() {
    local python
    setup
    # 550 s of steps in all: one device command may run 600 s. Compiling HDM for one shape
    # takes tens of seconds, so each step is sized by the compiles it needs.
    # SMOKE=1: the same steps on tiny sizes, so a CPU test can run all of them (the script
    # cannot rot between leases).
    local size=1920x1080 frames=240 model=hdm live_s=8 budget=120 limit=()
    if [ -n "${SMOKE:-}" ]; then
        size=160x96 frames=8 model=hdm-s live_s=1 budget=4 limit=(--limit 1 --crop 64)
    fi
    step gpu_tests 110 "$python" -m pytest -q -p no:cacheprovider tests/gpu
    step bench_matrix 160 "$python" -m benchmarks.bench_matrix --plan "${PLAN:-lease}" \
        --budget-s "$budget" --seconds 0.5 --json "$OUT/bench_matrix.json"
    step bench_pipeline 180 "$python" -m benchmarks.bench_pipeline --size "$size" \
        --frames "$frames" --models "$model" --ablations --live-fps 30 --live-seconds "$live_s" \
        --json "$OUT/bench_pipeline.json"
    step quality_guard 100 "$python" -m benchmarks.quality_guard --data "${DATA:-device_data}" \
        "${limit[@]}" --json "$OUT/quality_guard.json"
}

scale() {  # issue 23, lease 3: what the CPU work added since the suite was written
    local python
    setup
    # 540 s of steps. bench_realtime: the engine as run builds it (auto backend, bf16,
    # torch.compile), reduced (auto) against full, file fps and live p99; bench_streams: one
    # serve against separate processes; bench_segments: hdm through segments and workers.
    local sizes=1920x1080,3840x2160 frames=120 live_s=6 counts=4,8,16 size=1920x1080 fps=25
    local seconds=8 segment_s=20 model=hdm segment_model=hdm
    if [ -n "${SMOKE:-}" ]; then  # one of everything, the fastest of each
        sizes=160x96 frames=8 live_s=1 counts=1 size=160x96 fps=10 seconds=1 segment_s=2
        model=hdm-s segment_model=dcp
    fi
    step bench_realtime 260 "$python" -m benchmarks.bench_realtime --device "${DEVICE:-cuda}" \
        --no-quality --tasks dehaze --models "$model" --sizes "$sizes" --inference auto,full \
        --frames "$frames" --live-seconds "$live_s" --json "$OUT/bench_realtime.json"
    step bench_streams 180 "$python" -m benchmarks.bench_streams --models hdm-s \
        --counts "$counts" --size "$size" --fps "$fps" --seconds "$seconds" \
        --json "$OUT/bench_streams.json"
    step bench_segments 100 "$python" -m benchmarks.bench_segments --model "$segment_model" \
        --seconds "$segment_s" --json "$OUT/bench_segments.json"
}

case ${1:-} in
    prepare) shift; prepare "$@" ;;
    run) run ;;
    scale) scale ;;
    *) echo "usage: $0 prepare [DATA] | run | scale" >&2; exit 2 ;;
esac
