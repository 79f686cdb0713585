#!/bin/bash
# call 39: pytest -m gpu on tree be4a753, the GPU tests not run since §6n-§6q (test_compile_decode ran in call 37)
set -u
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p $OUT/r
timeout 520 python3 -m pytest -m gpu -q -p no:cacheprovider -rs --durations=15 tests/test_measure.py tests/test_hardware.py tests/test_roofline.py tests/test_sweep.py tests/test_quant.py tests/test_attention.py tests/test_bettertransformer.py tests/test_falcon_attention.py tests/test_quality.py tests/test_torchao.py tests/test_triton_quant.py tests/test_fused_projections.py > $OUT/r/pytest_gpu.log 2>&1; echo "pytest exit $?"
tail -45 $OUT/r/pytest_gpu.log | cut -c1-220
tar czf $OUT/call39.tgz -C $OUT r && rm -rf $OUT/r
true
