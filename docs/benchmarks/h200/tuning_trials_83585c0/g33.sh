#!/bin/bash
# call 33: inductor's static CUDA launcher off by default (with coordinate descent): does a job on a chosen trial's
# cache now keep that trial's picks (coordinate_descent_benchmarks 0, picks_reused true)? tiny, then the 7B bf16
# decode_limit job with tuning_trials=3; then pytest -m gpu tests/test_compile_decode.py if time is left
set -u
START=$(date +%s); left() { echo $(( 560 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p $OUT/r
python3 - > $OUT/r/torch_recheck.txt <<'PY'
import inspect, torch
from torch._inductor.runtime import triton_heuristics as th
print(torch.__version__); print(inspect.getsource(th.CachingAutotuner.recheck_autotune_cache))
PY
head -1 $OUT/r/torch_recheck.txt; grep -c "found_by_coordesc" $OUT/r/torch_recheck.txt
RUNNER_CACHE=/tmp/rc33 timeout 150 python3 -m runner hardware=cuda scenario=generate convert.compile=true convert.compile_options.tuning_trials=2 scenario.new_tokens=16 hydra.run.dir=/tmp/w33 < /dev/null > $OUT/r/tiny_trials.log 2>&1; echo "tiny trials exit $?"
python3 .probe/trials_diff.py /tmp/w33
mkdir -p $OUT/r/tiny; cp /tmp/w33/results.json $OUT/r/tiny/; for t in /tmp/w33/tuning_trials/trial*; do cp $t/results.json $OUT/r/tiny/$(basename $t).json; done
T=$(left); echo "7B with $T s"
RUNNER_CACHE=/tmp/rc33b timeout $(( T - 10 )) python3 -m runner experiment=decode_limit quant=none convert.compile_options.tuning_trials=3 hydra.run.dir=/tmp/w33b < /dev/null > $OUT/r/7b_trials.log 2>&1; echo "7B exit $?"
grep -i "tuning trial" $OUT/r/7b_trials.log | tail -5
python3 .probe/trials_diff.py /tmp/w33b
mkdir -p $OUT/r/7b; cp /tmp/w33b/results.json $OUT/r/7b/ 2>/dev/null; for t in /tmp/w33b/tuning_trials/trial*; do cp $t/results.json $OUT/r/7b/$(basename $t).json; cp $t/trial.log $OUT/r/7b/$(basename $t).log; done
T=$(left); echo "pytest with $T s"
[ $T -gt 70 ] && { timeout $(( T - 5 )) python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_compile_decode.py > $OUT/r/pytest_gpu.log 2>&1; echo "pytest exit $?"; tail -2 $OUT/r/pytest_gpu.log; }
tar czf $OUT/call33.tgz -C $OUT r && rm -rf $OUT/r
true
