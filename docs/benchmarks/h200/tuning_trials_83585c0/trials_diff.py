"""probe: a tuning-trials job's folder -> each trial's and the job's speed, cache counts, and the job's picks against
the chosen trial's (kernels only in one, kernels whose pick differs), and the chosen trial's cache files the job wrote"""
import json, sys
from pathlib import Path

job_dir = Path(sys.argv[1])
job = json.load(open(job_dir / "results.json"))
c = job["convert"]["compile"]
tt = c.get("tuning_trials") or {}
per = (job.get("measurements") or {}).get("generate", {}).get("per_token") or {}
print("job", job["status"], "ms/token", per.get("mean") and round(per["mean"] * 1e3, 3), "first_call_s %.1f" % c.get("first_call_s", -1), "counts", c.get("counts"))
print("trials", tt)
trials = sorted((job_dir / "tuning_trials").glob("trial*"))
for t in trials:
    r = json.load(open(t / "results.json")); tc = r["convert"]["compile"]
    print(t.name, r["status"], "first_call_s %.1f" % tc.get("first_call_s", -1), "counts", tc.get("counts"), "kernels", len(tc.get("kernel_configs") or {}))
if tt.get("chosen") is not None:
    chosen = trials[tt["chosen"]]
    a, b = c.get("kernel_configs") or {}, json.load(open(chosen / "results.json"))["convert"]["compile"].get("kernel_configs") or {}
    print("only in job:", sorted(set(a) - set(b))[:8]); print("only in trial:", sorted(set(b) - set(a))[:8])
    diff = {k: (b[k], a[k]) for k in set(a) & set(b) if a[k] != b[k]}
    print("same kernel, other pick: %d of %d" % (len(diff), len(set(a) & set(b))))
    for k, (tv, jv) in list(diff.items())[:8]: print("  ", k[:80], "trial", tv, "job", jv)
    marker = (chosen / "results.json").stat().st_mtime
    files = [f for f in (chosen / "inductor").rglob("*") if f.is_file()]
    newer = [f for f in files if f.stat().st_mtime > marker]
    print("chosen cache: %d files, %d best_config; written after the trial: %d (%d best_config), e.g. %s" % (
        len(files), sum(f.suffix == ".best_config" for f in files), len(newer), sum(f.suffix == ".best_config" for f in newer),
        [str(f.relative_to(chosen / "inductor"))[:60] for f in newer[:5]]))
