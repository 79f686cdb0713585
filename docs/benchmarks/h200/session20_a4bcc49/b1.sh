#!/bin/bash
# call B (2x H200): pytest -m gpu, second half, both GPUs visible
set -u
T0=$(date +%s)
R=$OUT/r; mkdir -p $R
python3 -c "import bitsandbytes" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 560 python3 -m pytest -m gpu -q -p no:cacheprovider -rs --durations=25 tests/test_attention.py tests/test_bettertransformer.py tests/test_falcon_attention.py tests/test_quality.py tests/test_torchao.py tests/test_triton_quant.py tests/test_fused_projections.py tests/test_gemlite.py tests/test_onnxruntime.py > $R/pytest_b.log 2>&1; echo "pytest exit $? at $(( $(date +%s) - T0 )) s"
grep -E "passed|failed|FAILED|SKIPPED|Error" $R/pytest_b.log | tail -25 | cut -c1-300
tar czf $OUT/callB.tgz -C $OUT r && rm -rf $R
true
