#!/usr/bin/env bash
set -uo pipefail; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
# hardware=multi_gpu on a two-GPU host: accelerate's device_map="auto" with per-GPU max_memory, as in the seed.
#   1. the seed's 4-bit budgets {0: 600MB, 1: 1GB} cannot hold bloom-3b: the run must fail before loading
#   2. bloom-3b 4-bit and 8-bit split over both GPUs within budgets that fit; fp16 over both GPUs; fp16 with
#      CPU offload; each run records its placement (modules and bytes per device)
#   3. the multi-GPU test of tests/test_hardware.py
# Writes $OUT/summary.md (placement per run). The bloom-3b random checkpoint (6 GB) is written once under $RUNNER_CACHE.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
BLOOM="model=bloom-3b attention=eager scenario=generate scenario.new_tokens=16 scenario.iterations=3 scenario.warmup_runs=1"

step() { echo "=== $1 ($(date +%T))"; shift; "$@" 2>&1 | grep -v "MatMul8bitLt\|Loading weights\|Writing model shards" | tail -15; }

nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv,noheader
step "seed budgets too small (expected to fail before loading)" \
  python3 -m runner $BLOOM quant=4bit hardware=multi_gpu 'hardware.max_memory={0:600MB,1:1GB}' \
  hydra.run.dir="$OUT/too-small"
step "4bit within {0: 2GB, 1: 2GB} (refused before loading since the balanced-budget fix)" \
  python3 -m runner $BLOOM quant=4bit hardware=multi_gpu 'hardware.max_memory={0:2GB,1:2GB}' \
  hydra.run.dir="$OUT/4bit-2x2GB"
step "8bit within {0: 3GB, 1: 3GB}" \
  python3 -m runner $BLOOM quant=8bit hardware=multi_gpu 'hardware.max_memory={0:3GB,1:3GB}' \
  hydra.run.dir="$OUT/8bit-2x3GB"
step "fp16 over every GPU" \
  python3 -m runner $BLOOM hardware=multi_gpu hydra.run.dir="$OUT/fp16-all-gpus"
step "fp16 within {0: 2GB, 1: 2GB} + CPU offload" \
  python3 -m runner $BLOOM hardware=multi_gpu 'hardware.max_memory={0:2GB,1:2GB}' hardware.offload=true \
  hydra.run.dir="$OUT/fp16-offload"
step "GPU test" python3 -m pytest -q -m gpu tests/test_hardware.py -p no:cacheprovider

# one table of every run above (footprint, modules per device, tokens/s or the error): $OUT/summary.md
python3 -m runner.report "$OUT" --no-plots && cut -c1-400 "$OUT/summary.md"
