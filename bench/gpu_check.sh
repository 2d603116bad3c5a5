#!/usr/bin/env bash
# The GPU check (issue 9): on a machine with NVIDIA GPUs and no network, in under 9 minutes:
#   1. a venv over the machine's own torch / pytorch-lightning / torchmetrics (--system-site-packages),
#      with mlflow-skinny, optuna, hydra-core, ... from bench/gpu_bundle/ (make gpu-bundle, no index);
#   2. nvidia-smi's summary;
#   3. `sweeplab train experiment=fashion_cnn trainer=gpu` with data.on_device=false (the CPU loader)
#      and =true, the same run with trainer=cpu, and a trainer=ddp run when there are >= 2 GPUs;
#      train/samples_per_second read back from MLflow, GPU utilisation sampled by nvidia-smi -l 1;
#   4. the fashion_cnn sweep with sweep.workers=auto for a fixed time, both loaders: trials per hour;
#   5. a table of samples/s per GPU, GPU utilisation and trials/hour, each beside the CPU loader's.
#
#   bash bench/gpu_check.sh              the check (on the GPU machine)
#   bash bench/gpu_check.sh --dry-run    on any machine: print every command, check the bundle, and
#                                        validate each command's overrides with the local .venv
#   bash bench/gpu_check.sh --setup-only build the venv and unpack the data, run nothing
#
# On the device machine (repository root, bundle carried along as an ignored path):
#   bash bench/gpu_check.sh              results also go to $OUT/gpu_check/ when $OUT is set
# Environment: GPU_CHECK_PYTHON (python3), GPU_CHECK_BUNDLE (bench/gpu_bundle), GPU_CHECK_WORK
# (bench/gpu_work), GPU_CHECK_BUDGET (400 s for the runs; setup, about 30 s, not counted),
# GPU_CHECK_SWEEP_SECONDS (60: no trial starts after that; each sweep then finishes its trials),
# GPU_CHECK_REHEARSE=1 (CPU trainers, small data: try the script on a CPU machine, with a stand-in
# nvidia-smi on PATH). Worst case: setup ~40 s + the budget + 15 s, under 8 minutes.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=${GPU_CHECK_BUNDLE:-$ROOT/bench/gpu_bundle}
WORK=${GPU_CHECK_WORK:-$ROOT/bench/gpu_work}
HOST_PY=${GPU_CHECK_PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-400}
SWEEP_SECONDS=${GPU_CHECK_SWEEP_SECONDS:-60}
EPOCHS=3
MODE=run
case "${1:-}" in
  --dry-run) MODE=dry ;;
  --setup-only) MODE=setup ;;
  "") ;;
  *) echo "usage: bash bench/gpu_check.sh [--dry-run | --setup-only]" >&2; exit 2 ;;
esac

VENV=$WORK/venv
VPY=$VENV/bin/python
SWEEPLAB=$VENV/bin/sweeplab
DATA=/usr/share/datasets/fashion-mnist
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || DATA=$WORK/fashion-mnist
RUNS=$WORK/runs
FAILED=0
say() { printf '%s\n' "$*"; }
show() { printf '  $ %s\n' "$*"; }

# ---------------------------------------------------------------- the runs, as data
# name | timeout (s) | needs (-, on_device, ddp) | sweeplab command line (words split on spaces)
TRAIN="experiment=fashion_cnn tracking.log_model=false data.root=$DATA"
SWEEP="sweep=fashion_cnn trainer=gpu sweep.workers=auto sweep.n_trials=500 sweep.timeout=$SWEEP_SECONDS data.root=$DATA"
# In order of importance: the budget skips the last runs first.
RUN_LIST=(
  "gpu_cpu_loader|100|-|train $TRAIN trainer=gpu trainer.max_epochs=$EPOCHS data.on_device=false"
  "gpu_on_device|100|on_device|train $TRAIN trainer=gpu trainer.max_epochs=$EPOCHS data.on_device=true"
  "sweep_cpu_loader|$((SWEEP_SECONDS + 60))|-|sweep $SWEEP data.on_device=false"
  "sweep_on_device|$((SWEEP_SECONDS + 60))|on_device|sweep $SWEEP data.on_device=true"
  "ddp_on_device|130|ddp|train $TRAIN trainer=ddp trainer.max_epochs=$EPOCHS data.on_device=true"
  "cpu|90|-|train $TRAIN trainer=cpu trainer.max_epochs=2 data.train_size=20000"
)
# GPU_CHECK_SET=packing: how far one small model is from the GPU's limit: several sweep workers sharing
# the one GPU (sweep.workers=N shares GPUs round robin), and a larger batch.
if [ "${GPU_CHECK_SET:-}" = packing ]; then
  PACKED="sweep=fashion_cnn trainer=gpu sweep.n_trials=500 sweep.timeout=$SWEEP_SECONDS data.root=$DATA data.on_device=true"
  RUN_LIST=(
    "sweep_packed_4|$((SWEEP_SECONDS + 60))|on_device|sweep $PACKED sweep.workers=4"
    "sweep_packed_8|$((SWEEP_SECONDS + 60))|on_device|sweep $PACKED sweep.workers=8"
    "gpu_batch_512|100|on_device|train $TRAIN trainer=gpu trainer.max_epochs=3 data.on_device=true data.batch_size=512"
  )
fi

# A checkout without data.on_device (older than issue 9) skips the on-device runs and drops the
# override from the others.
supports_on_device() {
  "$1" train --print-config experiment=fashion_cnn data.on_device=true >/dev/null 2>&1
}

command_of() {   # the run's command line, with data.on_device dropped when unsupported
  local line=$4
  [ "$ON_DEVICE" = 1 ] || line=$(sed -E 's/ data\.on_device=(true|false)//' <<<"$line")
  # GPU_CHECK_REHEARSE=1: the same loop on a CPU machine (with a stand-in nvidia-smi on PATH), CPU
  # trainers and 3000 training images, to try the script itself before spending GPU time.
  [ "${GPU_CHECK_REHEARSE:-0}" = 1 ] && line=$(sed -E 's/trainer=gpu/trainer=cpu/; s/trainer=ddp /trainer=ddp_cpu /;
    s/^train /train data.train_size=3000 /; s/^(train .*) data.train_size=20000/\1/' <<<"$line")
  printf '%s' "$line"
}

# ---------------------------------------------------------------- setup
bundle_check() {
  if [ ! -f "$BUNDLE/wheels.tar.xz" ] || [ ! -f "$BUNDLE/requirements.txt" ]; then
    say "gpu_check: no bundle at $BUNDLE: run 'make gpu-bundle' (needs PyPI) and carry bench/gpu_bundle"
    return 1
  fi
  local wheels mib
  wheels=$("$HOST_PY" -c 'import sys, tarfile; print(sum(n.endswith(".whl") for n in tarfile.open(sys.argv[1]).getnames()))' \
           "$BUNDLE/wheels.tar.xz") || return 1
  mib=$(du -sm "$BUNDLE" | cut -f1)
  say "bundle: $BUNDLE, $wheels wheels, ${mib} MiB, for Python $(cat "$BUNDLE/python-version")"
}

setup() {
  bundle_check || exit 1
  local want have
  want=$(cat "$BUNDLE/python-version")
  have=$("$HOST_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || { say "gpu_check: no $HOST_PY"; exit 1; }
  if [ "$want" != "$have" ]; then
    say "gpu_check: the bundle's wheels are for Python $want, $HOST_PY is $have (set GPU_CHECK_PYTHON)"; exit 1
  fi
  mkdir -p "$WORK"
  if [ ! -x "$VPY" ]; then
    "$HOST_PY" -m venv --system-site-packages "$VENV" 2>/dev/null \
      || { rm -rf "$VENV"; "$HOST_PY" -m venv --system-site-packages --without-pip "$VENV"; } \
      || { say "gpu_check: cannot create a venv with $HOST_PY"; exit 1; }
  fi
  # A host python that is itself a venv does not lend its own packages through
  # --system-site-packages (only its base Python's): point the new venv at its site folders.
  if "$HOST_PY" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    local site
    site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$HOST_PY" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
      > "$site/_gpu_check_host.pth"
  fi
  "$VPY" -m pip --version >/dev/null 2>&1 || { say "gpu_check: no pip for $VPY (nor in $HOST_PY's site-packages)"; exit 1; }
  local t0=$SECONDS
  rm -rf "$WORK/wheels"
  "$VPY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
    "$BUNDLE/wheels.tar.xz" "$WORK" || { say "gpu_check: unpacking the wheels failed"; exit 1; }
  export PIP_NO_INDEX=1 PIP_FIND_LINKS=$WORK/wheels PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_CONFIG_FILE=/dev/null
  "$VPY" -m pip install --quiet -r "$BUNDLE/requirements.txt" \
    && "$VPY" -m pip install --quiet --no-deps -e "$ROOT" \
    || { say "gpu_check: installing the bundle failed (above)"; exit 1; }
  unset PIP_NO_INDEX PIP_FIND_LINKS PIP_CONFIG_FILE
  if [ "$DATA" = "$WORK/fashion-mnist" ] && [ ! -f "$DATA/train-images-idx3-ubyte" ]; then
    mkdir -p "$DATA"
    "$VPY" - "$BUNDLE/fashion-mnist" "$DATA" <<'PY' || { say "gpu_check: unpacking Fashion-MNIST failed"; exit 1; }
import lzma, sys
from pathlib import Path
for source in Path(sys.argv[1]).glob("*.xz"):
    (Path(sys.argv[2]) / source.stem).write_bytes(lzma.decompress(source.read_bytes()))
PY
  fi
  say "setup: venv $VENV ready in $((SECONDS - t0)) s; data in $DATA"
  "$VPY" - <<'PY' || { say "gpu_check: the environment is incomplete (above)"; exit 1; }
import importlib, importlib.metadata as md, sys
names = ["torch", "pytorch-lightning", "torchmetrics", "mlflow-skinny", "optuna", "hydra-core", "omegaconf",
         "SQLAlchemy", "pandas", "numpy", "sweeplab"]
found = {}
for name in names:
    try:
        found[name] = md.version(name)
    except md.PackageNotFoundError:
        found[name] = "MISSING"
print("versions: " + ", ".join(f"{n} {v}" for n, v in found.items()))
failed = []
for module in ("mlflow", "mlflow.pytorch", "optuna", "hydra", "sqlalchemy", "alembic", "pandas", "sweeplab.sweep.driver",
               "sweeplab.sweep.worker.loop", "torch", "pytorch_lightning"):
    try:
        importlib.import_module(module)
    except Exception as e:
        failed.append(f"{module} ({type(e).__name__}: {e})")
if "torch" in sys.modules:
    import torch
    print(f"torch.cuda: available={torch.cuda.is_available()}, devices={torch.cuda.device_count()}, "
          f"cuda {torch.version.cuda}")
if failed:
    sys.exit("cannot import: " + "; ".join(failed))
PY
}

# ---------------------------------------------------------------- one run
run_one() {   # name timeout command...
  local name=$1 limit=$2; shift 2
  local dir=$RUNS/$name
  rm -rf "$dir"; mkdir -p "$dir"
  local left=$((BUDGET - (SECONDS - RUNS_START)))
  if [ "$left" -lt 40 ]; then say "[$name] skipped: ${left} s of the budget left"; echo skipped > "$dir/skipped"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "[$name] (≤ ${limit} s) sweeplab $*"
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 > "$dir/util.csv" 2>/dev/null &
  local sampler=$! t0=$SECONDS
  (cd "$dir" && exec timeout -k 15 "$limit" "$SWEEPLAB" "$@") > "$dir/out.log" 2>&1
  local code=$?
  echo $((SECONDS - t0)) > "$dir/wall_seconds"
  echo "$code" > "$dir/exit_code"
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  [ "$code" = 0 ] || { FAILED=1; say "[$name] exit $code; last lines:"; tail -n 5 "$dir/out.log" | sed 's/^/    /'; }
  "$VPY" "$ROOT/bench/gpu_report.py" run "$dir" || true
}

# ---------------------------------------------------------------- dry run
if [ "$MODE" = dry ]; then
  say "gpu_check --dry-run: what the GPU machine would do (nothing is run here)"
  bundle_check || FAILED=1
  [ -f "$BUNDLE/python-version" ] && say "  needs: $HOST_PY $(cat "$BUNDLE/python-version") with torch (CUDA), pytorch-lightning, torchmetrics"
  say "setup (offline):"
  show "$HOST_PY -m venv --system-site-packages $VENV"
  show "unpack $BUNDLE/wheels.tar.xz into $WORK/wheels"
  show "PIP_NO_INDEX=1 PIP_FIND_LINKS=$WORK/wheels $VPY -m pip install -r $BUNDLE/requirements.txt"
  show "PIP_NO_INDEX=1 PIP_FIND_LINKS=$WORK/wheels $VPY -m pip install --no-deps -e $ROOT"
  show "unpack $BUNDLE/fashion-mnist/*.xz into $WORK/fashion-mnist, the runs' data.root (only where /usr/share/datasets/fashion-mnist is missing)"
  show "nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader"
  LOCAL=$ROOT/.venv/bin/sweeplab
  if [ ! -x "$LOCAL" ]; then say "  (no local .venv: the commands are not validated; run 'make venv')"; LOCAL=; fi
  ON_DEVICE=1
  if [ -n "$LOCAL" ] && ! supports_on_device "$LOCAL"; then
    ON_DEVICE=0; say "  note: data.on_device is not in this checkout's config: the on-device runs would be skipped"
  fi
  say "runs (each in $RUNS/NAME, nvidia-smi -l 1 sampling utilisation alongside; budget ${BUDGET} s):"
  for spec in "${RUN_LIST[@]}"; do
    IFS='|' read -r name limit needs line <<<"$spec"
    line=$(command_of "$name" "$limit" "$needs" "$line")
    note=""
    [ "$needs" = ddp ] && note="   (only with >= 2 GPUs)"
    [ "$needs" = on_device ] && [ "$ON_DEVICE" = 0 ] && note="   (skipped: no data.on_device)"
    show "cd $RUNS/$name && timeout $limit $SWEEPLAB $line$note"
    [ -z "$LOCAL" ] && continue
    # Validate the overrides here: compose the config (and, for a sweep, every check the driver makes).
    read -r -a words <<<"$line"
    tmp=$(mktemp -d)
    if [ "${words[0]}" = sweep ]; then
      check=$(cd "$tmp" && "$ROOT/.venv/bin/python" -c 'import sys; from sweeplab.sweep.driver import prepare; s, _ = prepare(sys.argv[1:], []); print(f"sweep settings OK: workers={s.workers}, devices_per_trial={s.devices_per_trial}, timeout={s.timeout}")' "${words[@]:1}" 2>&1)
    else
      check=$(cd "$tmp" && "$LOCAL" "${words[0]}" --print-config "${words[@]:1}" 2>&1 >/dev/null && echo "config OK")
    fi
    status=$?
    [ -z "$(ls -A "$tmp")" ] || { check="$check (but it wrote files: $(ls -A "$tmp"))"; status=1; }
    rm -rf "$tmp"
    if [ "$status" = 0 ]; then say "      ok: $check"; elif [ "$needs" = on_device ] && [ "$ON_DEVICE" = 0 ]; then
      say "      skipped: $check"; else say "      FAIL: $check"; FAILED=1; fi
  done
  show "$VPY bench/gpu_report.py table $RUNS"
  if [ "$FAILED" = 0 ]; then say "dry run OK"; else say "dry run found problems (above)"; fi
  exit "$FAILED"
fi

# ---------------------------------------------------------------- the check
START=$SECONDS
setup
[ "$MODE" = setup ] && exit 0
command -v nvidia-smi >/dev/null || { say "gpu_check: no nvidia-smi: this is not a GPU machine (try --dry-run)"; exit 1; }
say "GPUs:"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader | sed 's/^/  /'
NGPU=$(nvidia-smi -L | grep -c '^GPU ')
say "CPU cores: $(nproc)"
ON_DEVICE=1
supports_on_device "$SWEEPLAB" || { ON_DEVICE=0; say "note: data.on_device is not in this checkout: on-device runs skipped"; }
rm -rf "$RUNS"; mkdir -p "$RUNS"
unset $(env | grep -o '^MLFLOW_[A-Z_]*') 2>/dev/null
export PYTHONUNBUFFERED=1
RUNS_START=$SECONDS
for spec in "${RUN_LIST[@]}"; do
  IFS='|' read -r name limit needs line <<<"$spec"
  [ "$needs" = ddp ] && [ "$NGPU" -lt 2 ] && { say "[$name] skipped: $NGPU GPU"; continue; }
  [ "$needs" = on_device ] && [ "$ON_DEVICE" = 0 ] && continue
  read -r -a words <<<"$(command_of "$name" "$limit" "$needs" "$line")"
  run_one "$name" "$limit" "${words[@]}"
done
say ""
"$VPY" "$ROOT/bench/gpu_report.py" table "$RUNS" --gpus "$NGPU" --cores "$(nproc)" | tee "$WORK/table.txt"
say "total $((SECONDS - START)) s (setup included)"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/gpu_check"
  cp "$WORK/table.txt" "$OUT/gpu_check/" 2>/dev/null
  for d in "$RUNS"/*/; do
    n=$(basename "$d"); mkdir -p "$OUT/gpu_check/$n"
    cp "$d"/*.log "$d"/*.csv "$d"/*.json "$d"/wall_seconds "$d"/exit_code "$OUT/gpu_check/$n/" 2>/dev/null
    cp -r "$d"/mlruns/sweep-logs "$OUT/gpu_check/$n/" 2>/dev/null
  done
fi
exit "$FAILED"
