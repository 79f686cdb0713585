#!/bin/bash
# call 27: the runner's bf16 decode with mode=reduce-overhead (CUDA graphs, coordinate descent, no max-autotune) against
# the default max-autotune, unfused and fused: call 26 found max-autotune's starting configs lead coordinate descent to
# slower picks for the big one-row products (22016x4096 85 % against 91 %, 12288x4096 68-83 % against 85-87 %).
# Each job in its own process with a cold inductor cache of its own (independent picks); picks dumped per job.
set -u
START=$(date +%s); left() { echo $(( 565 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
W=/tmp/w27; mkdir -p $W $OUT/r
n=0
while read -r args; do
  T=$(left); [ $T -gt 100 ] || { echo "stop before job $n ($args): $T s left"; break; }
  RUNNER_CACHE=/tmp/rc27_$n timeout $(( T - 5 )) python3 -m runner experiment=decode_limit quant=none $args hydra.run.dir=$W/$n < /dev/null > $W/$n.log 2>&1; echo "job $n exit $?"
  python3 - $W/$n/results.json "$args" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); g = r["measurements"].get("generate")
if not g: print(sys.argv[2], r["status"], r.get("error")); raise SystemExit
p = g["per_token"]; c = r["convert"]["compile"]; d = r["memory"]["nvml"]["devices"]["cuda:0"]
print(sys.argv[2], "| ms/token %.3f p50 %.3f min %.3f" % tuple(p[k] * 1e3 for k in ("mean", "p50", "min")), "first %.1f" % c["first_call_s"], c.get("counts"), "busy", d.get("utilization_percent", {}).get("mean"), "mem", d.get("mem_clock_mhz", {}).get("mean"))
PY
  cp $W/$n/results.json $OUT/r/results_$n.json
  python3 - /tmp/rc27_$n/inductor > $OUT/r/picks_$n.txt <<'PY'
import glob, json, os, re, sys
for b in sorted(glob.glob(sys.argv[1] + "/**/*.best_config", recursive=True)):
    src = "".join(open(p).read() for p in glob.glob(os.path.dirname(b) + "/*.py"))
    print(json.dumps(json.load(open(b))), sorted(set(re.findall(r"def (triton_\w+)\(", src))))
PY
  n=$((n+1))
done <<'JOBS'
convert.compile_options.mode=reduce-overhead
convert.compile_options.mode=max-autotune
convert.compile_options.mode=reduce-overhead convert.fuse_projections=true
convert.compile_options.mode=reduce-overhead
convert.compile_options.mode=reduce-overhead convert.fuse_projections=true
JOBS
tar czf $OUT/records.tgz -C $OUT r && rm -rf $OUT/r
true
