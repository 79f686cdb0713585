#!/usr/bin/env bash
# Tensor parallelism on a host with 2 GPUs: model=llama (Llama-2-7B shapes, random bfloat16 weights) split over both
# GPUs with hardware=tp (torchrun started by the runner, transformers' tp_plan="auto") against the same model on one
# GPU, forward and generate. Checks: each rank holds half the weights and about half the memory; the sharded
# model's logits agree with the whole model's (the compare stage, in the tp forward record); greedy generation gives
# the same tokens (step 5, straight transformers on the runner's checkpoint). About 5 minutes on 2 H100s.
#   bash scripts/gpu/tp.sh        (outputs under $OUT, default /tmp/out)
set -uo pipefail; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# the random checkpoint that tensor-parallel loading needs (13 GB, written once by rank 0)
export RUNNER_CACHE=${RUNNER_CACHE:-/tmp/runner-cache}
LLAMA=(model=llama model.weights=random scenario.batch_size=1 scenario.sequence_length=256 scenario.warmup_runs=2)
FORWARD=(scenario=forward scenario.iterations=10)
GENERATE=(scenario=generate scenario.new_tokens=32 scenario.iterations=3 compare.enabled=false)

nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

# step NAME SECONDS OVERRIDES...: one runner job; a job past its time is stopped, and the script goes on
step() {
  local name=$1 t=$2; shift 2
  echo "=== $name ($(date +%T))"
  timeout "$t" python3 -m runner "$@" "hydra.run.dir=$OUT/$name" >"$OUT/$name.log" 2>&1
  echo "exit $?"; grep -E "^error|failed:|vs reference" "$OUT/$name.log" | head -3
}

step tp-forward 200 "${LLAMA[@]}" "${FORWARD[@]}" hardware=tp hardware.num_gpus=2
step tp-generate 120 "${LLAMA[@]}" "${GENERATE[@]}" hardware=tp hardware.num_gpus=2
step one-gpu-forward 90 "${LLAMA[@]}" "${FORWARD[@]}" hardware=cuda compare.enabled=false
step one-gpu-generate 90 "${LLAMA[@]}" "${GENERATE[@]}" hardware=cuda

echo "=== 5. greedy tokens, 2 GPUs vs 1 ($(date +%T))"
cat >"$OUT/tokens.py" <<'EOF'
import glob, os, torch, torch.distributed as dist
from transformers import AutoModelForCausalLM
from transformers.distributed import DistributedConfig
path = sorted(glob.glob(os.environ["RUNNER_CACHE"] + "/random-weights/llama-bfloat16-*"))[0]
rank = int(os.environ["RANK"]); device = torch.device("cuda", rank)
torch.cuda.set_device(device); dist.init_process_group("nccl", device_id=device)
ids = torch.randint(3, 32000, (1, 256), generator=torch.Generator().manual_seed(0)).to(device)
kw = dict(max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)
tp = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, distributed_config=DistributedConfig(tp_plan="auto", tp_size=2))
with torch.inference_mode():
    sharded = tp.generate(ids, **kw)[0, 256:]
del tp; torch.cuda.empty_cache()
if rank == 0:
    one = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, device_map={"": 0})
    with torch.inference_mode():
        whole = one.generate(ids, **kw)[0, 256:]
    same = sharded == whole
    first = int((~same).nonzero()[0]) if not same.all() else None
    print(f"TOKENS identical {int(same.sum())}/{same.numel()}, first difference at step {first}")
dist.barrier(); dist.destroy_process_group()
EOF
timeout 150 python3 -m torch.distributed.run --standalone --nproc-per-node=2 "$OUT/tokens.py" >"$OUT/tokens.log" 2>&1
echo "exit $?"; grep TOKENS "$OUT/tokens.log" || tail -5 "$OUT/tokens.log"

echo "=== summary"
python3 - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
GiB = 2**30
out = Path(sys.argv[1])
print("| run | status | latency ms | per token ms | peak allocated GiB per GPU | weights GiB per rank | vs whole model |")
print("|---|---|---|---|---|---|---|")
for name in ("tp-forward", "one-gpu-forward", "tp-generate", "one-gpu-generate"):
    path = out / name / "results.json"
    if not path.exists():
        print(f"| {name} | no record | | | | | |"); continue
    r = json.loads(path.read_text())
    m = r.get("measurements", {})
    latency = (m.get("forward", {}).get("latency") or m.get("generate", {}).get("end_to_end") or {}).get("mean")
    per_token = (m.get("generate", {}).get("per_token") or {}).get("mean")
    gpus = r.get("memory", {}).get("gpu", {})
    peaks = ", ".join(f"{d}: {v['peak_allocated_bytes'] / GiB:.2f}" for d, v in gpus.items())
    shard = (r.get("model") or {}).get("tensor_parallel")
    weights = f"{shard['rank_parameter_bytes'] / GiB:.2f} of {shard['model_parameter_bytes'] / GiB:.2f}" if shard else ""
    a = r.get("agreement", {})
    agree = f"agrees={a['agrees']} rel max diff {a['relative_max_diff']:.2e} top-1 {a['top1_agreement']:.3f}" if "agrees" in a else ""
    status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error', {}).get('message', '')[:120]}"
    ms = lambda s: f"{s * 1e3:.2f}" if s is not None else ""
    print(f"| {name} | {status} | {ms(latency)} | {ms(per_token)} | {peaks} | {weights} | {agree} |")
EOF
