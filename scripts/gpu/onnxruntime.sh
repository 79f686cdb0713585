#!/usr/bin/env bash
set -uo pipefail; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
# ONNX Runtime (onnxruntime-gpu from the `ort` wheel kit) beside PyTorch on one GPU, each sweep in one process:
#   0. what is installed: onnxruntime's providers, onnx (torch.onnx.export needs it)
#   1. minilm (real weights, tokenizer): embeddings of the seed's sentence, forward, PyTorch vs CUDA provider
#   2. distilbert-sst2 (random weights, fp16): classification forward, PyTorch vs CUDA provider;
#      then ONNX Runtime's graph optimization levels on the cached export
#   3. llama (7B shapes, 2 of its 32 layers, random weights, fp16): forward and generate with the exported KV cache
#   4. TensorRT without its libraries: the check or the session must fail with the reason (never a silent CPU run)
#   5. the GPU test of tests/test_onnxruntime.py
# Exports are cached under $RUNNER_CACHE (outside $OUT). Writes $OUT/summary.md and summary.csv over every run.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export RUNNER_CACHE=${RUNNER_CACHE:-/tmp/runner-cache}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
BOTH="backend=pytorch,onnxruntime hardware=cuda"
FWD="scenario.warmup_runs=5 scenario.iterations=30"
TEXT="scenario.text='Both the music and visual were astounding, not to mention the actors performance.'"
LLAMA="model=llama model.dtype=float16 model.architecture.num_hidden_layers=2 model.weights=random"

step() { echo "=== $1 ($(date +%T))"; shift; "$@" 2>&1 | grep -v "TracerWarning\|^  \(if\|elif\|is_causal\|return\)" | tail -25; }

step "installed" python3 -c "
import importlib.util, torch, onnxruntime as ort
print('torch', torch.__version__, 'cuda', torch.version.cuda)
print('onnxruntime', ort.__version__, ort.get_available_providers())
print('onnx installed:', importlib.util.find_spec('onnx') is not None, '(needed by torch.onnx.export)')"
step "minilm embeddings: PyTorch vs ONNX Runtime CUDA" \
  python3 -m runner -m model=minilm $BOTH "$TEXT" scenario.sequence_length=128 $FWD hydra.sweep.dir="$OUT/ort-minilm"
step "distilbert-sst2 fp16 classification, batch 8 x 128" \
  python3 -m runner -m model=distilbert-sst2 model.weights=random model.dtype=float16 $BOTH scenario.batch_size=8 \
  scenario.sequence_length=128 $FWD hydra.sweep.dir="$OUT/ort-distilbert"
step "distilbert-sst2: ONNX Runtime graph optimization levels" \
  python3 -m runner -m model=distilbert-sst2 model.weights=random model.dtype=float16 backend=onnxruntime \
  hardware=cuda backend.graph_optimization=disable,basic,all scenario.batch_size=8 scenario.sequence_length=128 $FWD \
  hydra.sweep.dir="$OUT/ort-distilbert-levels"
step "llama shapes (2 layers) fp16: forward 4 x 256" \
  python3 -m runner -m $LLAMA $BOTH scenario.batch_size=4 scenario.sequence_length=256 $FWD \
  hydra.sweep.dir="$OUT/ort-llama-forward"
step "llama shapes (2 layers) fp16: generate 128 + 64 tokens, KV cache in ONNX" \
  python3 -m runner -m $LLAMA $BOTH scenario=generate scenario.sequence_length=128 scenario.new_tokens=64 \
  scenario.warmup_runs=2 scenario.iterations=5 hydra.sweep.dir="$OUT/ort-llama-generate"
step "TensorRT provider without TensorRT libraries (must fail with the reason)" \
  python3 -m runner model=minilm backend=onnxruntime backend.provider=tensorrt 'backend.extra_providers=[cuda]' \
  hardware=cuda hydra.run.dir="$OUT/ort-tensorrt"
step "GPU test" python3 -m pytest -q -m gpu tests/test_onnxruntime.py -p no:cacheprovider

# one table of every run above, ONNX Runtime against PyTorch on the same settings: $OUT/summary.md
python3 -m runner.report "$OUT" --baseline backend=pytorch && cut -c1-400 "$OUT/summary.md"
