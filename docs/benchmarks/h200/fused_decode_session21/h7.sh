#!/bin/bash
# session 21, call 7 (one H200, call 6's machine, still warm): the int4 ratio again: fused int4wo_triton twice, fused bf16 between
set -u
T0=$(date +%s)
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
run() { n=$1; shift; left=$((250 - $(date +%s) + T0)); [ $left -lt 60 ] && { echo "$n skipped ($left s left)"; return; }; timeout $((left - 5)) python3 -m runner experiment=decode_limit convert.compile=false convert.fused_decode=true "$@" hydra.run.dir=$R/$n > $R/$n.log 2>&1; echo "$n rc $?: $(grep -E 'generate.per_token' $R/$n.log | head -1) $(grep -E '^error|Error' $R/$n.log | head -1 | cut -c1-300)"; }
run fused_int4wo_triton_1 quant=int4wo_triton
run fused_bf16 quant=none
run fused_int4wo_triton_2 quant=int4wo_triton
find $R -name "*.safetensors" -delete
tar czf $OUT/call7.tgz -C $OUT r && rm -rf $R
true
