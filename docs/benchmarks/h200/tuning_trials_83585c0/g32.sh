#!/bin/bash
# call 32: why call 31's tiny tuning-trials job did not reuse the chosen trial's picks (picks_reused false): the
# records' new cache counts (FX-graph cache hits/misses, coordinate-descent benchmarks), the picks that differ, and
# the cache files the job wrote; then the same on the 7B bf16 decode_limit job with tuning_trials=2
set -u
START=$(date +%s); left() { echo $(( 570 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p $OUT/r
RUNNER_CACHE=/tmp/rc32 timeout 150 python3 -m runner hardware=cuda scenario=generate convert.compile=true convert.compile_options.tuning_trials=2 scenario.new_tokens=16 hydra.run.dir=/tmp/w32 < /dev/null > $OUT/r/tiny_trials.log 2>&1; echo "tiny trials exit $?"
python3 .probe/trials_diff.py /tmp/w32
mkdir -p $OUT/r/tiny; cp /tmp/w32/results.json $OUT/r/tiny/; for t in /tmp/w32/tuning_trials/trial*; do cp $t/results.json $OUT/r/tiny/$(basename $t).json; cp $t/trial.log $OUT/r/tiny/$(basename $t).log; done
T=$(left); echo "7B with $T s"
RUNNER_CACHE=/tmp/rc32b timeout $(( T - 10 )) python3 -m runner experiment=decode_limit quant=none convert.compile_options.tuning_trials=2 hydra.run.dir=/tmp/w32b < /dev/null > $OUT/r/7b_trials.log 2>&1; echo "7B exit $?"
grep -i "tuning trial" $OUT/r/7b_trials.log | tail -5
python3 .probe/trials_diff.py /tmp/w32b
mkdir -p $OUT/r/7b; cp /tmp/w32b/results.json $OUT/r/7b/ 2>/dev/null; for t in /tmp/w32b/tuning_trials/trial*; do cp $t/results.json $OUT/r/7b/$(basename $t).json; cp $t/trial.log $OUT/r/7b/$(basename $t).log; done
tar czf $OUT/call32.tgz -C $OUT r && rm -rf $OUT/r
true
