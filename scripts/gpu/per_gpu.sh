#!/usr/bin/env bash
# h200_page.sh's studies side by side on a host with several GPUs: the Nth list runs on GPU N, one study after
# another, all lists at once. On the 2x H200 of 2026-11-29 this ran two single-GPU studies at a time; a decode job
# that compiles on one GPU shares the host's cores with one that measures on the other (the page says so where it
# matters). Decode jobs run this way moved 4-10 % between sweeps (docs/benchmarks.md §6h): run a study that decides a
# default alone on the host; each record's host_other_cores and other_gpus_busy_% say what ran beside it.
#   bash scripts/gpu/per_gpu.sh [--dry-run | --detach] OUT LIST0 [LIST1 ...]
#     LISTn   studies for GPU n, comma-separated (h200_page.sh's names), e.g. gemv,decode_int4 decode_attention
#     OUT     OUT/gpuN/ gets GPU N's archives and h200_page.log, OUT/gpuN.log its console; studies work in OUT/workN
#     --detach  start them in a new session and return at once (they outlive a remote command that returns;
#               `tail OUT/gpu*.log` shows progress), instead of waiting for every list to finish
#     --dry-run print each GPU's plan (h200_page.sh --dry-run) and run nothing
# The studies run from a snapshot of the checkout (OUT/tree, without .git, wheel kits and run outputs), so that a tool that
# replaces the checkout during the run (as the device tool does on every call) cannot pull files from under a job:
# on 2026-11-29 two jobs failed that way ("unknown stage 'load'", "No module named 'runner.discovery'").
# One report over the lists' sweeps: python -m runner.report on a folder holding them (docs/measurement.md, Reports).
# All lists share one RUNNER_CACHE: random checkpoints and exports are written atomically, and the inductor cache
# is safe to share; the inductor archive is left out (NO_CACHE_PACK=1).
set -uo pipefail
MODE=run
case "${1:-}" in --dry-run) MODE=dry; shift ;; --detach) MODE=detach; shift ;; esac
[ $# -ge 2 ] || { echo "usage: per_gpu.sh [--dry-run | --detach] OUT LIST0 [LIST1 ...]" >&2; exit 2; }
OUT=$1; shift
HERE=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$MODE" != dry ] && command -v nvidia-smi >/dev/null; then
  gpus=$(nvidia-smi -L | wc -l)
  [ "$#" -le "$gpus" ] || { echo "$# lists for $gpus GPU(s): one list per GPU" >&2; exit 2; }
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
for list in "$@"; do  # every name must be a study before anything starts
  bash "$HERE/scripts/gpu/h200_page.sh" --dry-run "$OUT/check" ${list//,/ } >/dev/null || exit 2
done
rm -rf "$OUT/check"
if [ "$MODE" = dry ]; then
  gpu=0
  for list in "$@"; do
    echo "## GPU $gpu: ${list//,/ }"
    WORK=$OUT/work$gpu bash "$HERE/scripts/gpu/h200_page.sh" --dry-run "$OUT/gpu$gpu" ${list//,/ }
    gpu=$((gpu + 1))
  done
  exit 0
fi
rm -rf "$OUT/tree" && mkdir -p "$OUT/tree"
export RUNNER_COMMIT=${RUNNER_COMMIT:-$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)}  # the snapshot has no .git
tar -C "$HERE" --exclude=./.git --exclude='./.kit*' --exclude=./outputs --exclude=./multirun --exclude=./.venv \
  --exclude="./${OUT#"$HERE"/}" -cf - . | tar -C "$OUT/tree" -xf -
run_all() {
  local gpu=0 list
  for list in "$@"; do
    (cd "$OUT/tree" && CUDA_VISIBLE_DEVICES=$gpu WORK=$OUT/work$gpu NO_CACHE_PACK=1 \
      bash scripts/gpu/h200_page.sh "$OUT/gpu$gpu" ${list//,/ }) >"$OUT/gpu$gpu.log" 2>&1 &
    gpu=$((gpu + 1))
  done
  wait
  echo "per_gpu.sh: all lists done $(date -u +%T)" >>"$OUT/done"
}
if [ "$MODE" = detach ]; then
  export -f run_all; export OUT
  setsid nohup bash -c 'run_all "$@"' per_gpu "$@" >/dev/null 2>&1 </dev/null &
  echo "started $# list(s) in the background: tail $OUT/gpu*.log; $OUT/done appears when all are done"
else
  run_all "$@"
  tail -n 3 "$OUT"/gpu*.log
fi
