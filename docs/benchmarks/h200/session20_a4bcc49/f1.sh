#!/bin/bash
# call F (one H200): tree of 67dd028 + the shared probe timer: the changed GPU tests, and both probes on the shared timer
set -u
T0=$(date +%s)
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
timeout 120 python3 -m pytest -m gpu -q -p no:cacheprovider -rs tests/test_attention.py tests/test_falcon_attention.py tests/test_measure.py > $R/pytest_gpu.log 2>&1; echo "pytest exit $? at $(( $(date +%s) - T0 )) s"; grep -E "passed|failed|FAILED" $R/pytest_gpu.log | tail -4
timeout 170 python3 scripts/gpu/pdl_probe.py --out $R/pdl_probe.json > $R/pdl_probe.log 2>&1; echo "pdl_probe exit $? at $(( $(date +%s) - T0 )) s"; grep -E "ms, " $R/pdl_probe.log
left=$(( 440 - ($(date +%s) - T0) ))
timeout $left python3 scripts/gpu/gemv_probe.py --shapes 4096x4096 11008x4096 4096x11008 12288x4096 22016x4096 --formats bf16 bf16-triton --out $R/gemv_bf16.json > $R/gemv.log 2>&1; echo "gemv_probe exit $? at $(( $(date +%s) - T0 )) s"
python3 -c "
import json; d=json.load(open('$R/gemv_bf16.json')); print({s:{f:(v.get('us'), v.get('share_of_bandwidth')) for f,v in fm.items()} for s,fm in d['shapes'].items()})" 2>&1 | tail -2
tar czf $OUT/callF.tgz -C $OUT r && rm -rf $R
true
