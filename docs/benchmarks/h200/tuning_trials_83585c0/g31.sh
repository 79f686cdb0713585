#!/bin/bash
# call 31: (1) pytest -m gpu tests/test_compile_decode.py (kernel_configs' module filter of db8bc17, untested on a GPU);
# (2) tuning_trials=2 end to end on a tiny llama (call 30's command, after the trial-config fix);
# (3) bf16 7B step profiles, kernel by kernel: inductor's assert_indirect_indexing off (layer 0's q/k/v kernel gathers
#     the embedding row with a bounds assert inside its loop: 129 us against 26-31, §6n), then the default, same machine
set -u
START=$(date +%s); left() { echo $(( 560 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader
timeout 110 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_compile_decode.py > $OUT/r/pytest_gpu.log 2>&1; echo "pytest exit $?"; tail -2 $OUT/r/pytest_gpu.log
RUNNER_CACHE=/tmp/rc31 timeout 150 python3 -m runner hardware=cuda scenario=generate convert.compile=true convert.compile_options.tuning_trials=2 scenario.new_tokens=16 hydra.run.dir=/tmp/w31 < /dev/null > $OUT/r/tiny_trials.log 2>&1; echo "tiny trials exit $?"
grep -i "tuning trial" $OUT/r/tiny_trials.log | tail -5
python3 - <<'PY'
import json
job = json.load(open("/tmp/w31/results.json")); c = job["convert"]["compile"]
print("job", job["status"], "first_call_s %.1f" % c["first_call_s"], c.get("tuning_trials"), "kernels", len(c.get("kernel_configs") or {}))
for i in (0, 1):
    t = json.load(open(f"/tmp/w31/tuning_trials/trial{i}/results.json")); tc = t["convert"]["compile"]
    print("trial", i, t["status"], "first_call_s %.1f" % tc["first_call_s"], "kernels", len(tc.get("kernel_configs") or {}), "same picks as job:", tc.get("kernel_configs") == c.get("kernel_configs"))
PY
cp /tmp/w31/results.json $OUT/r/tiny_trials_results.json 2>/dev/null
for variant in noassert default; do
  T=$(left); echo "profile $variant with $T s"; [ $T -lt 150 ] && break
  opt=""; [ $variant = noassert ] && opt="convert.compile_options.inductor={assert_indirect_indexing:false}"
  RUNNER_CACHE=/tmp/rc31_$variant timeout $(( T - 5 )) python3 scripts/decode_profile.py quant=none $opt --defer-stop-check --kernels 0 > $OUT/r/profile_$variant.json 2> $OUT/r/profile_$variant.log; echo "exit $?"
  python3 - $OUT/r/profile_$variant.json <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
print(p["per_decode_step"])
for k in (p.get("top_kernels_per_step") or [])[:6]: print("  ", k)
PY
done
tar czf $OUT/call31.tgz -C $OUT r && rm -rf $OUT/r
true
