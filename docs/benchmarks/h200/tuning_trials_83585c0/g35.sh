#!/bin/bash
# call 35: a sweep's second job on the first one's inductor cache, tiny llama: jobs in one process (isolate=false)
# against each in its own (isolate=true): FX-graph hit, coordinate-descent benchmarks, picks against the first job's
set -u
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p $OUT/r
for iso in false true; do
  RUNNER_CACHE=/tmp/rc35_$iso timeout 80 python3 -m runner -m hardware=cuda scenario=generate convert.compile=true scenario.new_tokens=16 isolate=$iso scenario.iterations=3,4 hydra.sweep.dir=/tmp/s35_$iso < /dev/null > $OUT/r/sweep_$iso.log 2>&1; echo "isolate=$iso exit $?"
  python3 - $iso <<'PY'
import json, sys
recs = [json.load(open(f"/tmp/s35_{sys.argv[1]}/{i}/results.json")) for i in (0, 1)]
for i, r in enumerate(recs):
    c = r["convert"]["compile"]
    print("  job", i, r["status"], "first_call_s %.1f" % c["first_call_s"], {k: v for k, v in c["counts"].items() if k != "graph_breaks"})
a, b = (r["convert"]["compile"]["kernel_configs"] for r in recs)
print("  kernels", len(a), len(b), "picks differ:", len([k for k in a if b.get(k) != a[k]]))
PY
  for i in 0 1; do cp /tmp/s35_$iso/$i/results.json $OUT/r/sweep_${iso}_job$i.json 2>/dev/null; done
done
tar czf $OUT/call35.tgz -C $OUT r && rm -rf $OUT/r
true
