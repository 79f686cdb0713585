#!/bin/bash
# call D: the falcon KV-cache failure: SDPA flags across the test order, and which kernel/layout gives wrong results
set -u
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD:$PWD/.gpu PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 SDP_LOG=$R/sdp_state.txt
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 -m pytest -m gpu -q -p no:cacheprovider -p sdp_state tests/test_attention.py tests/test_falcon_attention.py > $R/order.log 2>&1; echo "order exit $?"; tail -2 $R/order.log
cut -c1-300 $R/sdp_state.txt
CUDA_VISIBLE_DEVICES=0 timeout 200 python3 .gpu/falcon_diag2.py > $R/diag2.log 2>&1; echo "diag2 exit $?"; grep "^prompt" $R/diag2.log | cut -c1-420
tar czf $OUT/callD.tgz -C $OUT r && rm -rf $R
true
