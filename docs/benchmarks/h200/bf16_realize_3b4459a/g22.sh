#!/bin/bash
# call 22: why the same bf16 job decodes at 4.2 ms one time and 6.2-8.8 ms another (calls 20-21): the same settings
# three times in one sweep (jobs after the first reuse its kernels and autotuning picks from the inductor cache),
# for the default and for realize_acc_reads_threshold=2; the record's new convert.compile.counts say whether CUDA
# graphs were skipped; TORCH_LOGS=perf_hints says why; the autotuning picks of every kernel are listed
set -u
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 RUNNER_CACHE=/tmp/runner-cache
W=/tmp/w22; mkdir -p $W
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee -a $OUT/versions.txt
summ() { python3 - "$@" <<'PY'
import json, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/*/results.json"), key=lambda p: int(p.split("/")[-2])):
    r = json.load(open(f)); g = r["measurements"].get("generate")
    if not g: print(f, r["status"], r.get("error")); continue
    p = g["per_token"]; c = r["convert"]["compile"]
    print(f.split("/")[-2], r["status"], r.get("overrides")[-2:], "ms/token %.3f p50 %.3f min %.3f" % tuple(p[k] * 1e3 for k in ("mean", "p50", "min")), "first %.1f" % c["first_call_s"], c.get("counts"))
PY
}
TORCH_LOGS=perf_hints timeout 500 python3 -m runner -m experiment=decode_limit quant=none scenario.iterations=3,4,5 '+convert.compile_options.inductor=choice({},{realize_acc_reads_threshold:2})' hydra.sweep.dir=$W/s > $W/s.log 2>&1; echo "exit $?" >> $W/s.log
summ $W/s | tee $OUT/sweep.txt
grep -i "cudagraph\|skipping" $W/s.log | sort | uniq -c | head -20
tail -2 $W/s.log
tar czf $OUT/s.tgz -C $W --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' s
gzip -c $W/s.log > $OUT/s.log.gz
python3 - <<'PY' > $OUT/picks.txt
import glob, json, os, re
for b in sorted(glob.glob("/tmp/runner-cache/inductor/**/*.best_config", recursive=True)):
    py = b[: -len(".best_config")] + ".py"
    name = "?"
    if os.path.exists(py):
        m = re.search(r"def (triton_\w+)\(", open(py).read()); name = m.group(1) if m else "?"
    print(json.dumps(json.load(open(b))), name)
PY
wc -l $OUT/picks.txt
true
