#!/usr/bin/env bash
# Run GPU scripts on a lent GPU host with no package index: install the carried wheels, run each script with
# its own output folder, and pack everything into one archive (the host returns at most 8 files).
#   bash scripts/gpu/session.sh [--wheels DIR]... [--kit DIR]... SCRIPT...
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 RUNNER_CACHE=/tmp/runner-cache
root_out=${OUT:-/tmp/out}
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$2"/*.whl; shift 2 ;;
    --kit) bash "$2"/install.sh; shift 2 ;;
    *) break ;;
  esac
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
mkdir -p /tmp/gpu-results
for script in "$@"; do
  name=$(basename "$script" .sh)
  echo "=== $name ($(date +%T))"
  mkdir -p "/tmp/gpu-results/$name"
  OUT="/tmp/gpu-results/$name" timeout "${SCRIPT_TIMEOUT:-540}" bash "$script" 2>&1 \
    | tee "/tmp/gpu-results/$name/console.log" | tail -"${TAIL:-40}"
  # pack after every script: what finished comes back even if a later one runs out of time
  tar czf "$root_out/results.tgz" --exclude='*.safetensors' --exclude='*.onnx' -C /tmp/gpu-results .
done
ls -la "$root_out"
