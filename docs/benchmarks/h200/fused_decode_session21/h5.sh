#!/bin/bash
# session 21, call 5 (one H200): same machine: fused bf16, compiled bf16 (the default path), int4wo_triton, int8wo_triton; GPU tests
set -u
T0=$(date +%s)
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
timeout 150 python3 -m pytest -q -m gpu tests/test_fused_decode.py tests/test_fused_projections.py tests/test_compile_decode.py > $R/pytest_gpu.log 2>&1; echo "pytest rc $?"; tail -3 $R/pytest_gpu.log
run() { n=$1; shift; left=$((560 - $(date +%s) + T0)); [ $left -lt 120 ] && { echo "$n skipped ($left s left)"; return; }; timeout $((left - 20)) python3 -m runner experiment=decode_limit "$@" hydra.run.dir=$R/$n > $R/$n.log 2>&1; echo "$n rc $?: $(grep -E 'generate.per_token' $R/$n.log | head -1)"; }
run fused quant=none convert.compile=false convert.fused_decode=true
run compiled quant=none
run int4wo_triton quant=int4wo_triton
run int8wo_triton quant=int8wo_triton
find $R -name "*.safetensors" -delete
tar czf $OUT/call5.tgz -C $OUT r && rm -rf $R
true
