#!/bin/bash
# call 28: (a) does coordinate descent, which times each kernel alone, help the whole bf16 step? decode_limit with it
# off against on, each job in its own process with a cold cache; (b) the step kernel by kernel with max-autotune (the
# default) and with reduce-overhead (call 27: 4.61-4.86 ms against 4.35, with picks that were faster alone, call 26)
set -u
START=$(date +%s); left() { echo $(( 565 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
W=/tmp/w28; mkdir -p $W $OUT/r
n=0
while read -r args; do
  T=$(left); [ $T -gt 90 ] || { echo "stop before job $n ($args): $T s left"; break; }
  RUNNER_CACHE=/tmp/rc28_$n timeout $(( T - 5 )) python3 -m runner experiment=decode_limit quant=none $args hydra.run.dir=$W/$n < /dev/null > $W/$n.log 2>&1; echo "job $n exit $?"
  python3 - $W/$n/results.json "$args" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); g = r["measurements"].get("generate")
if not g: print(sys.argv[2], r["status"], r.get("error")); raise SystemExit
p = g["per_token"]; c = r["convert"]["compile"]; d = r["memory"]["nvml"]["devices"]["cuda:0"]
print(sys.argv[2], "| ms/token %.3f p50 %.3f min %.3f" % tuple(p[k] * 1e3 for k in ("mean", "p50", "min")), "first %.1f" % c["first_call_s"], c.get("counts"), "busy", d.get("utilization_percent", {}).get("mean"), "mem", d.get("mem_clock_mhz", {}).get("mean"))
PY
  cp $W/$n/results.json $OUT/r/results_$n.json
  n=$((n+1))
done <<'JOBS'
convert.compile_options.coordinate_descent_tuning=false
convert.compile_options.coordinate_descent_tuning=true
convert.compile_options.coordinate_descent_tuning=false
JOBS
for mode in max-autotune reduce-overhead; do
  T=$(left); [ $T -gt 100 ] || { echo "profile $mode: $T s left, skipped"; continue; }
  RUNNER_CACHE=/tmp/rc28_p$mode timeout $(( T - 5 )) python3 scripts/decode_profile.py quant=none convert.compile_options.mode=$mode --defer-stop-check --kernels 0 > $OUT/r/profile_$mode.json 2> $W/profile_$mode.log < /dev/null; echo "profile $mode exit $?"; tail -2 $W/profile_$mode.log
  python3 -c "
import json; d=json.load(open('$OUT/r/profile_$mode.json')); print('$mode', {k: round(v, 3) for k, v in d['per_decode_step'].items() if isinstance(v, float)})
for k in d['top_kernels_per_step'][:9]: print('  %-60s %5.1f x %6.2f us = %.3f ms' % (k['name'][:60], k['launches_per_step'], k['us_per_launch'] or 0, k['ms_per_step']))
" 2>&1 | tail -12
done
tar czf $OUT/records.tgz -C $OUT r && rm -rf $OUT/r
true
