#!/bin/bash
# call E: the SDPA order fix (kernels.py) and the Falcon broadcast-head copy (falcon_attention.py), each also with the previous file
set -u
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
P="python3 -m pytest -m gpu -q -p no:cacheprovider -rs"
timeout 200 $P tests/test_attention.py tests/test_bettertransformer.py tests/test_falcon_attention.py > $R/new.log 2>&1; echo "new code exit $?"; grep -E "passed|failed|FAILED" $R/new.log | tail -8
cp runner/attention/kernels.py /tmp/k.py; cp .gpu/kernels_old.py runner/attention/kernels.py
timeout 100 $P tests/test_attention.py -k leave_pytorchs > $R/old_kernels.log 2>&1; echo "old kernels.py exit $?"; grep -E "passed|failed|assert" $R/old_kernels.log | tail -4
timeout 100 $P tests/test_attention.py tests/test_falcon_attention.py -k "forced_kernel or 7b_shapes" > $R/old_kernels_order.log 2>&1; echo "old kernels.py, falcon after forced kernels, exit $?"; grep -E "passed|failed|FAILED" $R/old_kernels_order.log | tail -6
cp /tmp/k.py runner/attention/kernels.py
cp runner/convert/falcon_attention.py /tmp/f.py; cp .gpu/falcon_old.py runner/convert/falcon_attention.py
timeout 100 $P tests/test_falcon_attention.py -k "7b_shapes" > $R/old_falcon.log 2>&1; echo "old falcon_attention.py exit $?"; grep -E "passed|failed|FAILED|assert" $R/old_falcon.log | tail -6
cp /tmp/f.py runner/convert/falcon_attention.py
tar czf $OUT/callE.tgz -C $OUT r && rm -rf $R
true
