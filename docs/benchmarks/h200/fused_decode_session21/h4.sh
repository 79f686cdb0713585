#!/bin/bash
# session 21, call 4 (one H200): the new defaults (no PDL, tuned configs) through python -m runner, the profile
set -u
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
show() { python3 - "$1" <<'P'
import json,sys
d=json.load(open(sys.argv[1]))
print(d['ms_per_token'], d['rounds_ms'], d['share_of_4.8TB/s'], 'pdl', d['pdl'], 'kernel sum', d['kernel_sum_us_per_step'], d['record'].get('agreement',{}).get('greedy_share'))
for k,v in d['kernels_per_step_us'].items(): print(' ', k, v)
for k,v in d.get('tuned',{}).items(): print(' tuned', k, v['config'], v['us'], v['all'][:3])
P
}
for i in 1 2; do
timeout 200 python3 -m runner experiment=decode_limit quant=none convert.compile=false convert.fused_decode=true hydra.run.dir=$R/job_fused_$i > $R/job_fused_$i.log 2>&1; echo "job $i rc $?"; grep -E "per_token|decode_tokens|error|Error" $R/job_fused_$i.log | head -5
done
timeout 150 python3 scripts/gpu/fused_decode_profile.py --out $R/profile_default.json > $R/profile_default.log 2>&1; echo "default rc $?"; show $R/profile_default.json
timeout 240 python3 scripts/gpu/fused_decode_profile.py --tune --out $R/profile_tune.json > $R/profile_tune.log 2>&1; echo "tune rc $?"; show $R/profile_tune.json
find $R -name "*.safetensors" -delete
tar czf $OUT/call4.tgz -C $OUT r && rm -rf $R
true
