#!/bin/bash
# call 23: four bf16 decode_limit jobs, each in its own process with its own cold inductor cache (independent
# autotuning picks), alternating the default and realize_acc_reads_threshold=2; the records now carry the GPU's
# utilization and memory clock (NVML) and convert.compile.counts, to tell a slow outlier's cause (calls 20-22)
set -u
START=$(date +%s); left() { echo $(( 565 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
W=/tmp/w23; mkdir -p $W
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee -a $OUT/versions.txt
n=0
for opts in '{}' '{realize_acc_reads_threshold:2}' '{}' '{realize_acc_reads_threshold:2}'; do
  T=$(left); [ $T -gt 110 ] || { echo "stop before job $n: $T s left"; break; }
  RUNNER_CACHE=/tmp/rc23_$n timeout $(( T - 5 )) python3 -m runner experiment=decode_limit quant=none "+convert.compile_options.inductor=$opts" hydra.run.dir=$W/$n > $W/$n.log 2>&1; echo "job $n exit $?"
  python3 - $W/$n/results.json "$opts" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); g = r["measurements"].get("generate")
if not g: print(sys.argv[2], r["status"], r.get("error")); raise SystemExit
p = g["per_token"]; c = r["convert"]["compile"]; d = r["memory"]["nvml"]["devices"]["cuda:0"]
print(sys.argv[2], "ms/token %.3f p50 %.3f min %.3f" % tuple(p[k] * 1e3 for k in ("mean", "p50", "min")), "first %.1f" % c["first_call_s"], c.get("counts"), "busy", d.get("utilization_percent"), "mem", d.get("mem_clock_mhz"), "J", d.get("energy_joules"))
PY
  tar czf $OUT/job$n.tgz -C $W $n $n.log
  n=$((n+1))
done
true
