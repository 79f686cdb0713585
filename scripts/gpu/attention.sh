#!/usr/bin/env bash
# Attention implementations on one H100 (install the fa4 wheel kit first):
#   1. tiny-llama (bfloat16): eager, sdpa, every forced SDPA kernel, fa2, fa3, without and with 30% left padding
#   2. tiny-llama: flex and fa4 (compiled on first use), fa4 with padding too
#   3. the llama architecture (Llama-2-7B shapes: hidden 4096, 32 heads of 128) with random weights, 4 layers:
#      every option at batch 4 x 1024 tokens, then the padded batch on the kernels that take masks
#   4. BetterTransformer: minilm and distilbert fused encoders in float16 with padding, against unconverted;
#      a decoder converted to native SDPA and saved
#   5. the gpu tests of tests/test_attention.py and tests/test_bettertransformer.py
# fa2 and fa3 need packages that only a long CUDA build provides: their jobs show the checks' messages.
# Every job records what ran (section `attention`); the table at the end reads it back.
set -uo pipefail; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
CUDA="hardware=cuda isolate=false"
TINY="model=tiny-llama model.dtype=bfloat16 scenario.batch_size=4 scenario.sequence_length=256"
LLAMA="model=llama model.weights=random model.architecture.num_hidden_layers=4 scenario.batch_size=4"
LLAMA="$LLAMA scenario.sequence_length=1024 scenario.iterations=5 scenario.warmup_runs=2"
SDPA_ALL="eager,sdpa,sdpa_flash,sdpa_efficient,sdpa_cudnn,sdpa_math"

# step TITLE SECONDS COMMAND...: a step past its time is stopped, and the script goes on
step() {
  echo "=== $1 ($(date +%T))"; local t=$2; shift 2
  timeout "$t" "$@" 2>&1 | grep -v "Loading weights\|USDT:\|STAGE:" | tail -12
}

python3 - <<'PY'
import importlib.metadata as md, torch, transformers
print("torch", torch.__version__, "transformers", transformers.__version__, "GPU", torch.cuda.get_device_name(0),
      "capability", torch.cuda.get_device_capability(0))
for dist in ("flash-attn", "flash-attn-3", "flash-attn-4", "nvidia-cutlass-dsl", "kernels"):
    try:
        print(f"  {dist} {md.version(dist)}")
    except md.PackageNotFoundError:
        print(f"  {dist}: not installed")
PY

step "1. tiny-llama: eager, sdpa, forced kernels, fa2, fa3; padding 0 and 0.3" 120 \
  python3 -m runner -m $TINY $CUDA attention=$SDPA_ALL,fa2,fa3 scenario.padding_ratio=0,0.3 \
  scenario.padding_side=left hydra.sweep.dir="$OUT/tiny-llama"
step "2. tiny-llama: flex, fa4 (compiled on first use)" 150 \
  python3 -m runner -m $TINY $CUDA attention=flex,fa4 hydra.sweep.dir="$OUT/tiny-llama-compiled"
step "2b. tiny-llama: fa4 with 30% padding (varlen)" 100 \
  python3 -m runner $TINY $CUDA attention=fa4 scenario.padding_ratio=0.3 scenario.padding_side=left \
  hydra.run.dir="$OUT/tiny-llama-fa4-padded"
step "3. llama architecture, random weights, 4 layers: every option" 220 \
  python3 -m runner -m $LLAMA $CUDA attention=$SDPA_ALL,fa2,fa3,fa4,flex hydra.sweep.dir="$OUT/llama"
step "3b. llama: 30% left padding (sdpa_flash is refused before loading)" 120 \
  python3 -m runner -m $LLAMA $CUDA attention=sdpa,sdpa_flash,sdpa_efficient,fa4 scenario.padding_ratio=0.3 \
  scenario.padding_side=left hydra.sweep.dir="$OUT/llama-padded"
step "4. BetterTransformer fused encoders, float16, 30% padding" 90 \
  python3 -m runner -m model=minilm,distilbert-sst2 model.dtype=float16 $CUDA scenario.batch_size=32 \
  scenario.sequence_length=128 scenario.padding_ratio=0.3 convert.bettertransformer=false,true \
  hydra.sweep.dir="$OUT/bettertransformer"
step "4b. BetterTransformer on a decoder: eager -> native SDPA, reversed and saved" 60 \
  python3 -m runner $TINY $CUDA attention=eager convert.bettertransformer=true save.model=true \
  hydra.run.dir="$OUT/bettertransformer-decoder"
step "5. gpu tests" 120 python3 -m pytest -q -m gpu tests/test_attention.py tests/test_bettertransformer.py -p no:cacheprovider

# one table of every run above (what ran, conversions, latency, agreement): $OUT/summary.md; and the ops each
# run's attention probe saw
python3 -m runner.report "$OUT" && cut -c1-400 "$OUT/summary.md"
python3 -c 'import json, pathlib, sys; out = pathlib.Path(sys.argv[1]); json.dump({str(p.parent.relative_to(out)): json.loads(p.read_text()).get("attention", {}).get("ops") for p in sorted(out.rglob("results.json"))}, open(out / "attention_ops.json", "w"), indent=1)' "$OUT"
