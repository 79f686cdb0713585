#!/usr/bin/env bash
set -uo pipefail; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
# bitsandbytes quantization on one H100, random weights quantized for real (no hub):
#   1. the design's example as written: python -m runner model=falcon quant=4bit
#   2. llama (7B architecture): bf16 vs 8-bit vs 4-bit; bloom-3b 8-bit and 4-bit: generate throughput, footprint
#   3. the seed's "4-bit + BetterTransformer + flash SDPA" on opt-350m
#   4. the GPU tests of tests/test_quant.py and tests/test_hardware.py
# Random 7B checkpoints are written once under $RUNNER_CACHE (falcon 14 GB, llama 13.5 GB, bloom-3b 6 GB).
# Writes $OUT/summary.md and summary.csv (python -m runner.report) over every run.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
GEN="scenario=generate scenario.new_tokens=32 scenario.iterations=3 scenario.warmup_runs=1"

step() { echo "=== $1 ($(date +%T))"; shift; "$@" 2>&1 | grep -v "MatMul8bitLt\|Loading weights\|Writing model shards" | tail -25; }

step "design example: model=falcon quant=4bit" \
  python3 -m runner model=falcon quant=4bit hydra.run.dir="$OUT/falcon-4bit"
step "llama 7B: none, 8bit, 4bit (generate)" \
  python3 -m runner -m model=llama quant=none,8bit,4bit $GEN hydra.sweep.dir="$OUT/llama"
step "bloom-3b: 8bit, 4bit (generate; bloom has no SDPA in transformers 5)" \
  python3 -m runner -m model=bloom-3b attention=eager quant=8bit,4bit $GEN hydra.sweep.dir="$OUT/bloom-3b"
step "the seed's combination: opt-350m 4-bit (fp16 compute) + BetterTransformer + flash SDPA" \
  python3 -m runner model=opt-350m quant=4bit convert.bettertransformer=true attention=sdpa_flash $GEN \
  hydra.run.dir="$OUT/opt-350m-4bit-bt-flash"
step "GPU tests" python3 -m pytest -q -m gpu tests/test_quant.py tests/test_hardware.py -p no:cacheprovider

# one table of every run above (footprint, quantized layers, ratio, tokens/s, agreement): $OUT/summary.md
python3 -m runner.report "$OUT" --baseline quant=none && cut -c1-400 "$OUT/summary.md"
