"""call 26: is the 22016x4096 (and 12288x4096) bf16 kernel's speed a matter of its autotuning pick or of how many
weight copies the timing cycles through? One process per fresh inductor cache (its own picks); in each, the same
compiled function timed over 2, 8, 64 and 200 copies, and over 2 copies taken from the middle of the 200."""
import glob, json, os, re, sys
import torch
sys.path.insert(0, "scripts/gpu")
from gemv_probe import timed_us

mode = sys.argv[1]  # "cd" (probe's own options) or "runner" (max-autotune + coordinate descent, as compile.py)
opts = {"coordinate_descent_tuning": True}
if mode == "runner":
    opts |= {"max_autotune": True, "realize_acc_reads_threshold": 2}
dev = torch.device("cuda")
torch.manual_seed(int(sys.argv[2]))
out = {"mode": mode, "cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"), "shapes": {}}
for n, k in [(22016, 4096), (12288, 4096), (4096, 11008)]:
    w = torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02
    x = torch.randn(1, k, device=dev, dtype=torch.bfloat16)
    fn = torch.compile(lambda x, w: x @ w.t(), dynamic=False, options=opts)
    fn(x, w)
    sets = [(x, w)] + [(x, w.clone()) for _ in range(199)]
    size = w.numel() * 2
    row = {}
    for label, s in [("2", sets[:2]), ("8", sets[:8]), ("64", sets[:64]), ("200", sets), ("2mid", sets[100:102]), ("1", sets[:1])]:
        us = timed_us(fn, s, 200, 5, dev)
        row[label] = [round(us, 2), round(size / us / 1e3 / 4800, 3)]
    out["shapes"][f"{n}x{k}"] = row
    print(n, k, row, flush=True)
    del sets, w
    torch.cuda.empty_cache()
picks = []
for b in sorted(glob.glob(os.environ["TORCHINDUCTOR_CACHE_DIR"] + "/**/*.best_config", recursive=True)):
    src = ""
    for py in glob.glob(os.path.dirname(b) + "/*.py"):
        src += open(py).read()
    m = re.findall(r"def (triton_\w+)\(", src)
    picks.append([json.load(open(b)), sorted(set(m))])
out["picks"] = picks
for p in picks: print(p)
json.dump(out, open(sys.argv[3], "w"), indent=1)
