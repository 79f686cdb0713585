#!/bin/bash
# call 34: (1) the record's retuned_kernels on the tiny tuning-trials job; (2) a sweep's second job of the same shapes
# on the first one's inductor cache: FX-graph hit, coordinate-descent benchmarks, its picks against the first job's
set -u
START=$(date +%s); left() { echo $(( 400 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p $OUT/r
RUNNER_CACHE=/tmp/rc34 timeout 120 python3 -m runner hardware=cuda scenario=generate convert.compile=true convert.compile_options.tuning_trials=2 scenario.new_tokens=16 hydra.run.dir=/tmp/w34 < /dev/null > $OUT/r/tiny_trials.log 2>&1; echo "tiny trials exit $?"
python3 .probe/trials_diff.py /tmp/w34 | head -2; cp /tmp/w34/results.json $OUT/r/tiny_results.json
T=$(left); echo "7B sweep with $T s"
RUNNER_CACHE=/tmp/rc34b timeout $(( T - 10 )) python3 -m runner -m experiment=decode_limit quant=none scenario.iterations=3,4 hydra.sweep.dir=/tmp/s34 < /dev/null > $OUT/r/7b_sweep.log 2>&1; echo "7B sweep exit $?"
python3 - <<'PY'
import json
recs = [json.load(open(f"/tmp/s34/{i}/results.json")) for i in (0, 1)]
for i, r in enumerate(recs):
    c = r["convert"]["compile"]; p = r["measurements"]["generate"]["per_token"]
    print("job", i, r["status"], "ms/token %.3f" % (p["mean"] * 1e3), "first_call_s %.1f" % c["first_call_s"], c["counts"])
a, b = (r["convert"]["compile"]["kernel_configs"] for r in recs)
print("kernels", len(a), len(b), "picks differ:", sorted(k for k in a if b.get(k) != a[k]))
PY
cp /tmp/s34/summary.csv $OUT/r/ 2>/dev/null; for i in 0 1; do cp /tmp/s34/$i/results.json $OUT/r/sweep_job$i.json; done
tar czf $OUT/call34.tgz -C $OUT r && rm -rf $OUT/r
true
