#!/bin/bash
# call 30: convert.compile_options.tuning_trials=2 on the GPU (tiny llama): two trials, each in its own process with
# its own cache, then the job with the faster one's cache; its picks must be the chosen trial's
set -u
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 RUNNER_CACHE=/tmp/rc30
timeout 165 python3 -m runner hardware=cuda scenario=generate convert.compile=true convert.compile_options.tuning_trials=2 scenario.new_tokens=16 hydra.run.dir=/tmp/w30 < /dev/null > $OUT/run.log 2>&1; echo "exit $?"
grep -i "tuning trial\|error" $OUT/run.log | tail -6
python3 - <<'PY'
import json
job = json.load(open("/tmp/w30/results.json")); c = job["convert"]["compile"]
print("job", job["status"], "first_call_s %.1f" % c["first_call_s"], c.get("tuning_trials"), "kernels", len(c["kernel_configs"]))
for i in (0, 1):
    t = json.load(open(f"/tmp/w30/tuning_trials/trial{i}/results.json")); tc = t["convert"]["compile"]
    print("trial", i, t["status"], "first_call_s %.1f" % tc["first_call_s"], "overrides", t["overrides"][-2:], "cache", tc["inductor_cache_dir"], "same picks as job:", tc["kernel_configs"] == c["kernel_configs"])
print("job cache", c["inductor_cache_dir"])
PY
cp /tmp/w30/results.json $OUT/ 2>/dev/null; true
