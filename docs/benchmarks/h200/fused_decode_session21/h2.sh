#!/bin/bash
# session 21, call 2 (one H200): tune the fused step's kernels alone, then the step with the picks
set -u
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
timeout 330 python3 scripts/gpu/fused_decode_profile.py --tune --out $R/profile_tuned.json > $R/profile_tuned.log 2>&1; echo "tuned rc $?"; grep -vE "^ |^\{|^\}" $R/profile_tuned.log | head -30
python3 - <<'P'
import json,os
d=json.load(open(os.environ['OUT']+'/r/profile_tuned.json'))
print(d['ms_per_token'], d['share_of_4.8TB/s'], d['kernel_sum_us_per_step'], d['kernel_events'])
for k,v in d['kernels_per_step_us'].items(): print(k, v)
P
timeout 150 python3 scripts/gpu/fused_decode_profile.py --out $R/profile_default.json > $R/profile_default.log 2>&1; echo "default rc $?"
python3 - <<'P'
import json,os
d=json.load(open(os.environ['OUT']+'/r/profile_default.json'))
print(d['ms_per_token'], d['share_of_4.8TB/s'], d['kernel_sum_us_per_step'], d['kernel_events'])
for k,v in d['kernels_per_step_us'].items(): print(k, v)
P
tar czf $OUT/call2.tgz -C $OUT r && rm -rf $R
true
