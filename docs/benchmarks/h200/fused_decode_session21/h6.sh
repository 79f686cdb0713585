#!/bin/bash
# session 21, call 6 (one H200): the fused step over the runner's int4/int8 weights: 7B jobs beside the bf16 one; GPU tests
set -u
T0=$(date +%s)
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
run() { n=$1; shift; left=$((560 - $(date +%s) + T0)); [ $left -lt 100 ] && { echo "$n skipped ($left s left)"; return; }; timeout $((left - 15)) python3 -m runner experiment=decode_limit convert.compile=false convert.fused_decode=true "$@" hydra.run.dir=$R/$n > $R/$n.log 2>&1; echo "$n rc $?: $(grep -E 'generate.per_token' $R/$n.log | head -1) $(grep -E '^error|Error' $R/$n.log | head -1 | cut -c1-300)"; }
run fused_int4wo_triton quant=int4wo_triton
run fused_bf16 quant=none
run fused_int8wo_triton quant=int8wo_triton
left=$((570 - $(date +%s) + T0)); [ $left -gt 60 ] && { timeout $((left - 10)) python3 -m pytest -q -m gpu tests/test_fused_decode.py > $R/pytest_gpu.log 2>&1; echo "pytest rc $?"; tail -4 $R/pytest_gpu.log; }
find $R -name "*.safetensors" -delete
tar czf $OUT/call6.tgz -C $OUT r && rm -rf $R
true
