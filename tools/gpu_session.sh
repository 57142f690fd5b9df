#!/usr/bin/env bash
# All the device work of one GPU slice in a single call (fits the lent H200's 10-minute command limit):
#   set-up -> training pools rendered on all cores -> three trainings side by side (--max-minutes):
#   the paper-size model and the CPU model on the randomised world, and the CPU network on the independent world
#   (cross-world check only) -> cross-world evaluation -> benchmarks (reconstruction, pipeline, engines)
#   -> pytest -m gpu. Results go to $OUT: the paper weights (one file, fp32 ~15 MB) and results.tar.gz (cards,
#   CPU-model weights, logs, reports, benchmark JSON), re-packed after every step so a cut-off run still returns them.
#
# On the device, from the repo root (carry .whl: pydantic and its deps, see tools/gpu_wheels.sh):
#   bash tools/gpu_session.sh
# Dry run on a CPU before spending device minutes (tiny sizes, ~3 min on 2 cores):
#   TINY=1 OUT=out/gpu_dry bash tools/gpu_session.sh
# Later slices: INIT_PAPER=imcsr_live/weights/imcsr_paper_tc (start from the shipped weights; the optimiser state is
# not kept, so the first iterations re-warm Adam) and the same for INIT_CPU.
# Env: OUT, WORK (scratch, default /tmp/imcsr_gpu), TRAIN_MIN (default 3.5), DEADLINE_S (default 560: later steps are
# skipped past it), WORKERS (render processes, default nproc - 1), EVAL_IMAGES (default 12), TINY.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
OUT=${OUT:-$ROOT/out/gpu_session}
WORK=${WORK:-/tmp/imcsr_gpu}
TRAIN_MIN=${TRAIN_MIN:-3.5}
DEADLINE_S=${DEADLINE_S:-560}
WORKERS=${WORKERS:-$(($(nproc) - 1))}
EVAL_IMAGES=${EVAL_IMAGES:-12}
TINY=${TINY:-0}
PY=${PY:-python3}
mkdir -p "$OUT" "$WORK/cfg" "$WORK/res"
export PYTHONUNBUFFERED=1 IMCSR_LIVE_CACHE_DIR=$WORK/cache MPLBACKEND=Agg
LOG=$WORK/res/session.log

log() { echo "[$(($(date +%s) - START)) s] $*" | tee -a "$LOG"; }
left() { echo $((DEADLINE_S - ($(date +%s) - START))); }
pack() {  # everything small in one archive (at most 8 files come back)
  tar -czf "$OUT/results.tar.gz.tmp" -C "$WORK" res && mv "$OUT/results.tar.gz.tmp" "$OUT/results.tar.gz"
  cp "$LOG" "$OUT/session.log"
}
step() {  # step NAME SECONDS CMD...: run with a time limit, log its exit status, pack
  local name=$1 limit=$2
  shift 2
  if [ "$(left)" -lt 20 ]; then log "skip $name (deadline)"; return 0; fi
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  log "start $name (limit ${limit} s)"
  if declare -F "$1" >/dev/null; then set -- bash -c '"$@"' _ "$@"; fi  # timeout runs programs, not functions
  timeout --signal=INT --kill-after=15 "$limit" "$@" >"$WORK/res/$name.log" 2>&1
  log "end $name: exit $? ($(tail -n 1 "$WORK/res/$name.log" | cut -c1-160))"
  pack
}

# --- set-up ------------------------------------------------------------------------------------------------------
if [ "${NO_WHEELS:-0}" != 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { log "wheel install failed"; pack; exit 1; }
  export PYTHONPATH=/tmp/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
log "python $($PY -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$WORK/res/gpu.txt" 2>&1 || true
$PY -c "import imcsr_live.train.trainer, imcsr_live.train.compare, imcsr_live.synth.randomised" \
  || { log "imports failed"; pack; exit 1; }

# Session configs: absolute rig path, outputs under $WORK, threads shared by three trainings; TINY shrinks all sizes.
session_cfg() {  # session_cfg SRC NAME [INIT]
  local src=$1 dst=$WORK/cfg/$2.toml init=${3:-}
  sed -e "s#^rig = .*#rig = \"$ROOT/hardware_configs/simulated.toml\"#" \
      -e "s#^output_dir = .*#output_dir = \"$WORK/runs/$2\"#" \
      -e "s#^render_workers = .*#render_workers = $WORKERS#" "$src" >"$dst"
  # [train] is the last table: replace its CPU-sized keys (three trainings share the cores; batch 16 on the GPU)
  sed -i -e '/^threads = /d' -e '/^init = /d' -e 's/^batch_size = .*/batch_size = 16/' "$dst"
  printf 'threads = %s\n' "$(($(nproc) / 4 > 0 ? $(nproc) / 4 : 1))" >>"$dst"
  if [ -n "$init" ]; then printf 'init = "%s"\n' "$ROOT/$init" >>"$dst"; fi
  if [ "$TINY" = 1 ]; then
    sed -i -e 's/^cells = .*/cells = 2/' -e 's/^val_cells = .*/val_cells = 1/' -e 's/^size = 512/size = 160/' \
      -e 's/^patch = 128/patch = 64/' -e 's/^val_samples = .*/val_samples = 4/' -e 's/^batch_size = .*/batch_size = 2/' \
      -e 's/^val_every = .*/val_every = 10/' -e 's/^checkpoint_every = .*/checkpoint_every = 10/' \
      -e 's/^width = 64/width = 8/' -e 's/^groups = 5/groups = 1/' -e 's/^blocks = 10/blocks = 1/' \
      -e 's/^reduction = 16/reduction = 4/' "$dst"
  fi
}
session_cfg hardware_configs/train_paper_rand_tc.toml paper "${INIT_PAPER:-}"
session_cfg hardware_configs/train_cpu_rand_tc.toml cpu_rand "${INIT_CPU:-}"
session_cfg hardware_configs/train_cpu_indep_tc.toml cpu_indep
cp "$WORK"/cfg/*.toml "$WORK/res/"

export ROOT START OUT WORK TRAIN_MIN DEADLINE_S WORKERS PY LOG

# --- training pools (rendered once, cached; the trainings then load them) -----------------------------------------
render_pools() {  # a script file, not stdin: the render workers are spawned and re-import the main module
  cat >"$WORK/render_pools.py" <<'EOF'
import logging, sys, time
from imcsr_live.train.config import load_train_config
from imcsr_live.train.trainer import build_samplers

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for path in sys.argv[1:]:
        t = time.perf_counter()
        _, _, desc = build_samplers(load_train_config(path))
        print(f"{path}: {desc[:120]}... in {time.perf_counter() - t:.0f} s", flush=True)
EOF
  # one BLAS / OpenMP thread per render process (16 threads in each of 15 workers thrashed the cores)
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $PY "$WORK/render_pools.py" "$@"
}
export -f render_pools
step render 200 render_pools "$WORK/cfg/cpu_rand.toml" "$WORK/cfg/cpu_indep.toml"

# --- training: three side by side ----------------------------------------------------------------------------------
train_all() {
  local pids=()
  for name in paper cpu_rand cpu_indep; do
    $PY -m imcsr_live -v train -c "$WORK/cfg/$name.toml" --max-minutes "$TRAIN_MIN" >"$WORK/res/train_$name.log" 2>&1 &
    pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  for name in paper cpu_rand cpu_indep; do
    mkdir -p "$WORK/res/models"
    cp "$WORK/runs/$name"/*.json "$WORK/runs/$name"/*.metrics.csv "$WORK/res/models/" 2>/dev/null
    tail -n 3 "$WORK/res/train_$name.log"
  done
  cp "$WORK/runs/cpu_rand"/imcsr_cpu_rand_tc.safetensors "$WORK/runs/cpu_indep"/imcsr_cpu_indep_tc.safetensors \
    "$WORK/res/models/" 2>/dev/null
  cp "$WORK/runs/paper/imcsr_paper_tc.safetensors" "$OUT/" 2>/dev/null
  return $rc
}
export -f train_all
TRAIN_S=$(awk -v m="$TRAIN_MIN" 'BEGIN { printf "%d", m * 60 + 75 }')
step train "$TRAIN_S" train_all

# --- evaluation: every model on every world, next to the copy baseline ----------------------------------------------
SIZE=512; PHOTONS="100 300 1000"
[ "$TINY" = 1 ] && { SIZE=160; PHOTONS="1000"; EVAL_IMAGES=2; }
MODELS=(--model "Paper-rand=$WORK/runs/paper/imcsr_paper_tc" --model "CPU-rand=$WORK/runs/cpu_rand/imcsr_cpu_rand_tc"
  --model "CPU-indep=$WORK/runs/cpu_indep/imcsr_cpu_indep_tc" --model "Shipped-default=imcsr_live/weights/imcsr_cpu_demo_tc")
if [ -f tools/cross_world.py ]; then
  # shellcheck disable=SC2086
  step cross_world 110 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $PY tools/cross_world.py "${MODELS[@]}" --worlds default,randomised,independent \
    --images "$EVAL_IMAGES" --size "$SIZE" --photons $PHOTONS --workers "$WORKERS" --out "$WORK/res/cross_world"
fi

# --- benchmarks, most wanted first (eager + CUDA graphs or the quick compile: max-autotune would take minutes) ------
RAW=512; [ "$TINY" = 1 ] && RAW=128
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  step bench_engine 80 $PY tools/bench_engine.py --mode gpu --engine torch-cuda --size 512 --size 1024 \
    --model "$WORK/runs/paper/imcsr_paper_tc" --compile-mode default --frames 10 --out "$WORK/res/bench_engine.json"
else
  step bench_engine 80 $PY -m imcsr_live benchmark --engine torch-cpu --network tiny --size 128 --frames 2 \
    --json "$WORK/res/bench_engine.json"
fi
if [ -f tools/bench_pipeline.py ]; then
  step bench_pipeline 60 $PY tools/bench_pipeline.py --raw-size "$RAW" --timepoints 150 --warmup 10 --unique 8 \
    --model "$WORK/runs/paper/imcsr_paper_tc" --precision fp16 --compile-mode off --timeout 50 \
    --json "$WORK/res/bench_pipeline.json"
fi
step bench_recon 30 $PY -m imcsr_live benchmark --stage recon --json "$WORK/res/bench_recon.json"
step pytest_gpu 40 $PY -m pytest -q -m gpu -p no:cacheprovider tests/engine/test_torch_engine.py tests/recon/test_wiener.py
log "done"
pack
