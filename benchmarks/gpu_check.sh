#!/usr/bin/env bash
# The engine's GPU checks in one call on a lent GPU machine, within 10 minutes:
#   1. the step benchmark (engine vs open_clip's own step), ViT-B-16 and ViT-L-14, batch 256, bf16, without and with compile;
#   2. the loader benchmark (streaming path, worker processes);
#   3. a short real `fomo-host run` on CUDA: 2 tasks, ViT-B-16 (random weights), synthetic data at 224 px, a checkpoint
#      inside each task;
#   4. `fomo-host budget` with the cuda memory measure (finetune and lora).
# They run most important first and all end within GPU_CHECK_SECONDS (570) of the start; one without time left is skipped.
#
# The device machine has torch, accelerate and peft but not open_clip_torch, pydantic, tomli-w, webdataset, galore-torch:
# they travel as wheels in .whl/ (ignored by git). Once, here, where pip reaches the package registry:
#     bash benchmarks/gpu_check.sh fetch
# Then, from the repository the device tool sends (the session's checkout):
#     run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
# Everything is logged under $OUT (or ./gpu-check-logs); the summary table comes last.
set -uo pipefail
cd "$(dirname "$0")/.."

WHEELS=(
    "open_clip_torch==3.3.0" "ftfy==6.3.1" "wcwidth==0.9.4"
    "pydantic==2.14.4" "pydantic_core==2.50.5" "annotated_types==0.8.0" "typing_inspection==0.4.5"
    "tomli_w==1.2.0" "webdataset==1.0.2" "braceexpand==0.1.7" "galore-torch==1.0"
)

if [[ "${1:-}" == "fetch" ]]; then
    exclude="$(git rev-parse --git-common-dir)/info/exclude"
    grep -qx "/.whl/" "$exclude" 2>/dev/null || echo "/.whl/" >>"$exclude"
    mkdir -p .whl
    for wheel in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$wheel" || exit 1
    done
    du -sh .whl
    exit 0
fi

LOG="${OUT:-$PWD/gpu-check-logs}"
mkdir -p "$LOG"
export PYTHONUNBUFFERED=1 FOMO_CACHE_DIR=/tmp/fomo-cache OMP_NUM_THREADS=8 COLUMNS=160
SUMMARY="$LOG/summary.txt"
: >"$SUMMARY"
started=$SECONDS

note() { echo "$*" | tee -a "$SUMMARY"; }

# the device tool allows 600 s a call: every check ends by this many seconds after the start, so the summary comes back
DEADLINE=${GPU_CHECK_SECONDS:-570}

# each check: a name, a time limit in seconds, a command; its output goes to $LOG/<name>.log, and a failure never stops
# the checks after it. The checks run most important first; one without time left is skipped, and says so.
check() {
    local name=$1 limit=$2
    shift 2
    local left=$((DEADLINE - (SECONDS - started)))
    if ((left < 30)); then
        note "$(printf '%-28s skipped: %ss left of the call' "$name" "$left")"
        return
    fi
    ((limit > left)) && limit=$left
    echo "=== $name (limit ${limit}s, at $((SECONDS - started))s)"
    local begin=$SECONDS
    timeout "$limit" "$@" >"$LOG/$name.log" 2>&1
    local status=$?
    tail -n 25 "$LOG/$name.log"
    note "$(printf '%-28s exit %-3s %4ss  %s' "$name" "$status" "$((SECONDS - begin))" "$(grep -E 'ratio|img/s|error' "$LOG/$name.log" | tail -n 1)")"
}

# --- installs: the carried wheels, then fomo-host and its plugins from this tree (no index, no build isolation)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --target /tmp/site . plugins/* \
    >"$LOG/install.log" 2>&1 || { tail -n 30 "$LOG/install.log"; exit 1; }
export PYTHONPATH=/tmp/site
export PATH=/tmp/site/bin:$PATH
nvidia-smi -L | tee -a "$SUMMARY"
python3 -c "import torch, accelerate, peft, open_clip; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'accelerate', accelerate.__version__, 'peft', peft.__version__, 'open_clip', open_clip.__version__)" | tee -a "$SUMMARY"
note "installs done at $((SECONDS - started))s"

# --- the spec of the short real run (3.)
cat >/tmp/gpu-check-spec.toml <<'SPEC'
[run]
name = "gpu-check"
batch_size = 64
checkpoint_every_steps = 5

[model]
name = "open-clip"
params = { architecture = "ViT-B-16" }

[[data.sources]]
name = "synthetic"
[data.sources.params]
image_size = 224
pool_train_per_class = 4
train_per_class = 8
test_per_class = 4
retrieval_train = 32
retrieval_test = 16
adaptation = ["letters", "arrows"]
zero_shot = ["shapes-outline"]

[data]
num_tasks = 2

[budget]
steps_per_task = 12

[optimizer]
lr = 1e-5
SPEC

STEP=(python3 benchmarks/step_throughput.py --device cuda --batch 256 --precision bf16 --rounds 3 --steps 10 --warmup 3)
# 1. the step benchmark without compile
check step-vit-b-16 75 "${STEP[@]}" --model ViT-B-16
check step-vit-l-14 100 "${STEP[@]}" --model ViT-L-14
# 3. a short real run on CUDA: 2 tasks, checkpoints inside them
check run-vit-b-16 120 fomo-host run /tmp/gpu-check-spec.toml --output /tmp/gpu-check-run
# 4. the budget with the cuda memory measure
check budget-cuda 90 fomo-host budget /tmp/gpu-check-spec.toml --methods finetune,lora \
    --set 'budget={maf_per_task = 2.0e6, memory_measure = "cuda"}'
# 2. the loader benchmark: the streaming path with worker processes
check loader 60 python3 benchmarks/loader_throughput.py --skip-cache --images 2000 --stream-workers 0 8 15 --stream-batches 6
# 1. the step benchmark with compile (compiling takes the longest: last)
check step-vit-b-16-compile 150 "${STEP[@]}" --model ViT-B-16 --compile
check step-vit-l-14-compile 170 "${STEP[@]}" --model ViT-L-14 --compile

echo
echo "=== summary (logs in $LOG), $((SECONDS - started))s in all"
cat "$SUMMARY"
