#!/bin/bash
# call 29: the record's new convert.compile.kernel_configs on the GPU: pytest -m gpu of test_compile_decode.py, then
# one bf16 decode_limit job with a cold cache, its picks printed
set -u
START=$(date +%s); left() { echo $(( 430 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 200 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_compile_decode.py > $OUT/pytest_gpu.log 2>&1; echo "pytest exit $?"; tail -4 $OUT/pytest_gpu.log
T=$(left); echo "job with $T s"
RUNNER_CACHE=/tmp/rc29 timeout $(( T - 5 )) python3 -m runner experiment=decode_limit quant=none hydra.run.dir=/tmp/w29 < /dev/null > /tmp/w29.log 2>&1; echo "job exit $?"
cp /tmp/w29/results.json $OUT/results.json 2>/dev/null
python3 - <<'PY'
import json
r = json.load(open("/tmp/w29/results.json")); c = r["convert"]["compile"]; p = r["measurements"]["generate"]["per_token"]
print("ms/token %.3f p50 %.3f" % (p["mean"] * 1e3, p["p50"] * 1e3), c["counts"])
for name, pick in c["kernel_configs"].items(): print(" ", name[:70], pick)
PY
true
