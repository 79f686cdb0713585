#!/bin/bash
# call C (2x H200): GPU1: pdl_probe (first-layer check of ded3e48, never GPU-run); GPU0: the falcon KV-cache test failure of call B
set -u
T0=$(date +%s)
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=index,name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.csv
( CUDA_VISIBLE_DEVICES=1 timeout 420 python3 scripts/gpu/pdl_probe.py --out $R/pdl_probe.json > $R/pdl_probe.log 2>&1; echo "probe exit $?" >> $R/pdl_probe.log ) &
timeout 120 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_falcon_attention.py -k "7b_shapes" > $R/falcon_alone.log 2>&1; echo "falcon alone exit $?"; tail -3 $R/falcon_alone.log
timeout 150 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_attention.py tests/test_bettertransformer.py tests/test_falcon_attention.py > $R/falcon_order.log 2>&1; echo "falcon after attention exit $?"; tail -3 $R/falcon_order.log
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 .gpu/falcon_diag.py > $R/falcon_diag.log 2>&1; echo "diag exit $?"; cut -c1-400 $R/falcon_diag.log | grep -v Warning | head -60
wait
tail -25 $R/pdl_probe.log | cut -c1-300
tar czf $OUT/callC.tgz -C $OUT r && rm -rf $R
true
