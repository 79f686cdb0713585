#!/bin/bash
# session 21, call 3 (one H200): split attention; tuned step with and without PDL; GPU tests
set -u
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
show() { python3 - "$1" <<'P'
import json,sys
d=json.load(open(sys.argv[1]))
print(d['ms_per_token'], d['share_of_4.8TB/s'], 'pdl', d['pdl'], 'kernel sum', d['kernel_sum_us_per_step'], d['kernel_events'], d['record'].get('agreement',{}).get('greedy_share'))
for k,v in d['kernels_per_step_us'].items(): print(' ', k, v)
for k,v in d.get('tuned',{}).items(): print(' tuned', k, v['config'], v['us'], v['all'][:3])
P
}
timeout 200 python3 -m pytest -q -m gpu tests/test_fused_decode.py > $R/pytest_gpu.log 2>&1; echo "pytest rc $?"; tail -3 $R/pytest_gpu.log
for v in "--tune" "--tune --no-pdl"; do n=$(echo $v | tr -d ' -'); timeout 240 python3 scripts/gpu/fused_decode_profile.py $v --out $R/profile_$n.json > $R/profile_$n.log 2>&1; echo "$v rc $?"; grep -E "Error" $R/profile_$n.log | head -3; show $R/profile_$n.json; done
tar czf $OUT/call3.tgz -C $OUT r && rm -rf $R
true
