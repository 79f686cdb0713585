#!/bin/bash
# call 21: bf16 decode_limit, q/k/v and gate/up fused or not (convert.fuse_projections) x inductor's
# realize_acc_reads_threshold default or 2 (call 20: every layer realizes its RMSNorm), then every kernel of one step
set -u
START=$(date +%s); left() { echo $(( 575 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 RUNNER_CACHE=/tmp/runner-cache
W=/tmp/w21; mkdir -p $W
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee -a $OUT/versions.txt
summ() { python3 - "$@" <<'PY'
import json, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/*/results.json")):
    r = json.load(open(f)); g = r["measurements"].get("generate")
    if not g: print(f, r["status"], r.get("error")); continue
    p = g["per_token"]; c = r["convert"]
    print(f, r["status"], r.get("overrides"), "ms/token %.3f p50 %.3f p90 %.3f min %.3f" % tuple(p[k] * 1e3 for k in ("mean", "p50", "p90", "min")), "first %.1f" % c["compile"]["first_call_s"])
PY
}
TORCH_LOGS=output_code timeout 380 python3 -m runner -m experiment=decode_limit quant=none 'convert.fuse_projections=false,true' '+convert.compile_options.inductor=choice({},{realize_acc_reads_threshold:2})' hydra.sweep.dir=$W/s > $W/s.log 2>&1; echo "exit $?" >> $W/s.log
summ $W/s | tee $OUT/sweep.txt
tar czf $OUT/s.tgz -C $W --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' s
gzip -c $W/s.log > $OUT/s.log.gz; [ $(stat -c %s $OUT/s.log.gz) -le 40000000 ] || rm -f $OUT/s.log.gz
T=$(left); echo "profile with $T s"
if [ $T -gt 90 ]; then
  timeout $(( T - 10 )) python3 scripts/decode_profile.py quant=none convert.fuse_projections=true '+convert.compile_options.inductor={realize_acc_reads_threshold:2}' --defer-stop-check --kernels 0 > $OUT/profile_fused_racc2.json 2> $W/profile.log; echo "profile exit $?"; tail -3 $W/profile.log
fi
true
