#!/bin/bash
# call 25: issue 12's ratios on one machine since bf16's new default (a7b493a): bf16, int4wo_triton, int8wo_triton in
# one sweep; then gemv_probe's bf16 kernels over 256 MiB of weight copies (as before) and over a decode step's
# footprint (one weight of its own per call, 6-36 GB): does inductor's 22016x4096 kernel read slower when its weights
# are spread like the model's (54 us in the step against 40 alone, §6o)?
set -u
START=$(date +%s); left() { echo $(( 570 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 RUNNER_CACHE=/tmp/runner-cache
W=/tmp/w25; mkdir -p $W
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee -a $OUT/versions.txt
summ() { python3 - "$@" <<'PY'
import json, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/*/results.json"), key=lambda p: int(p.split("/")[-2])):
    r = json.load(open(f)); g = r["measurements"].get("generate")
    if not g: print(f, r["status"], r.get("error")); continue
    p = g["per_token"]; c = r["convert"]["compile"]; d = r["memory"]["nvml"]["devices"]["cuda:0"]
    print(f.split("/")[-2], r["status"], r.get("overrides")[-1:], "ms/token %.3f p50 %.3f min %.3f" % tuple(p[k] * 1e3 for k in ("mean", "p50", "min")), "first %.1f" % c["first_call_s"], c.get("counts"), "busy", d.get("utilization_percent"), "mem", d.get("mem_clock_mhz"))
PY
}
timeout 420 python3 -m runner -m experiment=decode_limit quant=none,int4wo_triton,int8wo_triton hydra.sweep.dir=$W/s > $W/s.log 2>&1; echo "sweep exit $?" | tee -a $W/s.log
summ $W/s | tee $OUT/sweep.txt
python3 -m runner.report $W/s > $OUT/report.txt 2>&1; cp $W/s/summary.csv $OUT/ 2>/dev/null
for i in 0 1 2; do cp $W/s/$i/results.json $OUT/results_$i.json 2>/dev/null; done
tail -3 $W/s.log
for cold in 268435456 40000000000; do
  T=$(left); [ $T -gt 40 ] || { echo "probe $cold: $T s left, skipped"; continue; }
  timeout $(( T - 5 )) python3 scripts/gpu/gemv_probe.py --formats bf16 --shapes 22016x4096 12288x4096 4096x4096 4096x11008 11008x4096 --cold-bytes $cold --out $OUT/probe_$cold.json > $W/p$cold.log 2>&1; echo "probe $cold exit $?"
  python3 -c "
import json,sys; d=json.load(open('$OUT/probe_$cold.json'))
for s,r in d['shapes'].items(): print('$cold', s, {f: (v.get('us'), v.get('share_of_bandwidth'), v.get('weight_copies')) for f, v in r.items() if isinstance(v, dict)})
" 2>&1 | tail -6
done
gzip -c $W/s.log > $OUT/s.log.gz
true
