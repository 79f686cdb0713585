#!/bin/bash
# call 20: bf16 decode_limit with inductor's index asserts off (layer 0's 129 us q/k/v kernel) and a lower
# realize_acc_reads_threshold (RMSNorm realized in every layer: "kind A" of §6n), against the default, one machine
set -u
START=$(date +%s); left() { echo $(( 575 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 RUNNER_CACHE=/tmp/runner-cache
W=/tmp/w20; mkdir -p $W
python3 -c "import torch, triton, torch._inductor.config as c; print(torch.__version__, triton.__version__, c.realize_acc_reads_threshold, c._realize_acc_reads_threshold_default, c.assert_indirect_indexing)" | tee $OUT/versions.txt
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
TORCH_LOGS=output_code timeout 540 python3 -m runner -m experiment=decode_limit quant=none '+convert.compile_options.inductor=choice({},{assert_indirect_indexing:false},{realize_acc_reads_threshold:2},{assert_indirect_indexing:false,realize_acc_reads_threshold:2})' hydra.sweep.dir=$W/s > $W/s.log 2>&1; echo "exit $?" >> $W/s.log
summ $W/s | tee $OUT/sweep.txt
grep -v "^\s*$" $W/s.log | grep -E "^(exit|Error|error)" | tail -3
# launch order of each job's decode step (output_code's call functions), for the layouts
grep -nE "^\s*(triton_[a-z_0-9]+\.run|extern_kernels\.|torch\.ops\.aten\._scaled_dot)|Output code written to|^# AOT ID" $W/s.log | gzip > $OUT/launches.txt.gz
tar czf $OUT/s.tgz -C $W --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' s
gzip -c $W/s.log > $OUT/s.log.gz; [ $(stat -c %s $OUT/s.log.gz) -le 40000000 ] || rm -f $OUT/s.log.gz
ls -la $OUT
true
