#!/bin/bash
# session 21, call 1 (one H200): the fused decode step: GPU tests, the 7B profile with and without PDL, the job
set -u
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
git log -1 --format=%H > $R/commit.txt 2>/dev/null
timeout 200 python3 -m pytest -q -m gpu tests/test_fused_decode.py -x > $R/pytest_gpu.log 2>&1; echo "pytest rc $?"; tail -5 $R/pytest_gpu.log
timeout 150 python3 scripts/gpu/fused_decode_profile.py --out $R/profile_pdl.json > $R/profile_pdl.log 2>&1; echo "profile rc $?"; grep -E "ms/token|Error|error" $R/profile_pdl.log | head -5
timeout 150 python3 scripts/gpu/fused_decode_profile.py --no-pdl --out $R/profile_nopdl.json > $R/profile_nopdl.log 2>&1; echo "profile nopdl rc $?"; grep -E "ms/token|Error|error" $R/profile_nopdl.log | head -5
timeout 200 python3 -m runner experiment=decode_limit quant=none convert.compile=false convert.fused_decode=true hydra.run.dir=$R/job_fused > $R/job_fused.log 2>&1; echo "job rc $?"; grep -E "per_token|decode_tokens|error|Error" $R/job_fused.log | head -5
find $R -name "*.safetensors" -delete
tar czf $OUT/call1.tgz -C $OUT r && rm -rf $R
true
