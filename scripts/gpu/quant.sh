#!/usr/bin/env bash
set -uo pipefail; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
# bitsandbytes quantization on one H100, random weights quantized for real (no hub):
#   1. the design's example as written: python -m runner model=falcon quant=4bit
#   2. llama (7B architecture): bf16 vs 8-bit vs 4-bit; bloom-3b 8-bit and 4-bit: generate throughput, footprint
#   3. the seed's "4-bit + BetterTransformer + flash SDPA" on opt-350m
#   4. the GPU tests of tests/test_quant.py and tests/test_hardware.py
# Random 7B checkpoints are written once under $RUNNER_CACHE (falcon 14 GB, llama 13.5 GB, bloom-3b 6 GB).
# Prints a summary table and writes $OUT/quant_benchmarks.md (the section for docs/benchmarks.md).
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
GEN="scenario=generate scenario.new_tokens=32 scenario.iterations=3 scenario.warmup_runs=1"

step() { echo "=== $1 ($(date +%T))"; shift; "$@" 2>&1 | grep -v "MatMul8bitLt\|Loading weights\|Writing model shards" | tail -25; }

step "design example: model=falcon quant=4bit" \
  python3 -m runner model=falcon quant=4bit hydra.run.dir="$OUT/falcon-4bit"
step "llama 7B: none, 8bit, 4bit (generate)" \
  python3 -m runner -m model=llama quant=none,8bit,4bit $GEN hydra.sweep.dir="$OUT/llama"
step "bloom-3b: 8bit, 4bit (generate; bloom has no SDPA in transformers 5)" \
  python3 -m runner -m model=bloom-3b attention=eager quant=8bit,4bit $GEN hydra.sweep.dir="$OUT/bloom-3b"
step "the seed's combination: opt-350m 4-bit (fp16 compute) + BetterTransformer + flash SDPA" \
  python3 -m runner model=opt-350m quant=4bit convert.bettertransformer=true attention=sdpa_flash $GEN \
  hydra.run.dir="$OUT/opt-350m-4bit-bt-flash"
step "GPU tests" python3 -m pytest -q -m gpu tests/test_quant.py tests/test_hardware.py -p no:cacheprovider

python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
MiB = 2**20
rows = []
for path in sorted(out.rglob("results.json")):
    r = json.loads(path.read_text())
    cfg, model = r.get("config", {}), r.get("model", {})
    q = model.get("quantization") or {}
    a = r.get("agreement") or {}
    gen = (r.get("measurements") or {}).get("generate", {}).get("throughput", {})
    fwd = (r.get("measurements") or {}).get("forward", {})
    rows.append({
        "run": str(path.parent.relative_to(out)),
        "model": cfg.get("model", {}).get("name"),
        "quant": cfg.get("quant", {}).get("name"),
        "status": r.get("status"),
        "footprint MiB": f"{model['footprint_bytes'] / MiB:.0f}" if "footprint_bytes" in model else "-",
        "unquantized MiB": f"{q['unquantized_footprint_bytes'] / MiB:.0f}" if q else "-",
        "ratio": f"{q['footprint_ratio']:.3f}" if q else "-",
        "quantized layers": ", ".join(f"{n} {s}" for s, n in q.get("by_scheme", {}).items()) or "-",
        "tokens/s": f"{gen['tokens_per_s']['value']:.1f}" if gen else "-",
        "forward ms": f"{fwd['latency']['mean'] * 1e3:.2f}" if "latency" in fwd else "-",
        "top-1": f"{a['top1_agreement']:.3f}" if "top1_agreement" in a else "-",
        "KL": f"{a['kl_divergence']:.2e}" if "kl_divergence" in a else "-",
        "rel. max diff": f"{a['relative_max_diff']:.3f} (tol {a['tolerance']})" if "relative_max_diff" in a else "-",
        "placement": ", ".join(f"{d}: {v['modules']}" for d, v in model.get("placement", {}).get("devices", {}).items()),
        "error": (r.get("error") or {}).get("message", "")[:160].replace("\n", " "),
    })
if not rows:
    print("no results.json under", out)
    sys.exit(0)
keys = list(rows[0])
table = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
table += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
records = [json.loads(p.read_text()) for p in out.rglob("results.json")]
gpus = next((r["environment"]["gpus"] for r in records if r.get("environment", {}).get("gpus")), [{}])
header = f"## bitsandbytes quantization ({len(gpus)} x {gpus[0].get('name', 'no GPU')})\n\n"
(out / "quant_benchmarks.md").write_text(header + "\n".join(table) + "\n")
print("\n".join(table))
PY
