#!/usr/bin/env bash
# Tensor parallelism on a host with 2 GPUs (issue 16): model=llama (Llama-2-7B shapes, random weights) split over both
# GPUs with hardware=tp (torchrun started by the runner, transformers' tp_plan="auto") against the same model on one
# GPU.
#   1. agreement: the sharded model's logits against the whole model's (the compare stage, eager attention on both
#      sides, 256 tokens) in float32 and in bfloat16, and on smollm2's trained weights where its heads divide;
#   2. speed: forward and generate at batch 1, 8 and 32, two GPUs against one (one multirun each, report per sweep);
#   3. greedy generation gives the same tokens (straight transformers on the runner's checkpoint);
#   4. the two-GPU placement test of tests/test_hardware.py.
# About 8 minutes on 2 H200s, most of it loading and writing the random checkpoints (13 GB bf16, 27 GB fp32).
#   bash scripts/gpu/tp.sh        (outputs under $OUT, default /tmp/out)
#   PART=agree bash scripts/gpu/tp.sh, then PART=speed: the two halves (agreement is not timed: it may share the GPUs)
set -uo pipefail; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# the random checkpoint that tensor-parallel loading needs (written once by rank 0)
export RUNNER_CACHE=${RUNNER_CACHE:-/tmp/runner-cache}
LLAMA=(model=llama model.weights=random scenario.sequence_length=256 scenario.warmup_runs=2)
FORWARD=(scenario=forward scenario.iterations=10 compare.enabled=false)
GENERATE=(scenario=generate scenario.new_tokens=32 scenario.iterations=3 compare.enabled=false)
AGREE=(attention=eager scenario=forward scenario.sequence_length=256 scenario.iterations=5 hardware=tp hardware.num_gpus=2)
BATCHES=scenario.batch_size=1,8,32

nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

# step NAME SECONDS OVERRIDES...: one runner job; a job past its time is stopped, and the script goes on
step() {
  local name=$1 t=$2; shift 2
  echo "=== $name ($(date +%T))"
  timeout "$t" python3 -m runner "$@" "hydra.run.dir=$OUT/$name" >"$OUT/$name.log" 2>&1
  echo "exit $?"; grep -E "^error|failed:|vs reference" "$OUT/$name.log" | head -3
}

sweep() {  # sweep NAME SECONDS OVERRIDES...: one runner multirun, its report printed
  local name=$1 t=$2; shift 2
  echo "=== $name ($(date +%T))"
  timeout "$t" python3 -m runner -m "$@" "hydra.sweep.dir=$OUT/$name" >"$OUT/$name.log" 2>&1
  echo "exit $?"; [ -f "$OUT/$name/summary.md" ] || python3 -m runner.report "$OUT/$name" >/dev/null 2>&1
  grep -E "^\| [0-9]" "$OUT/$name/summary.md" 2>/dev/null | cut -c1-400
}

if [ "${PART:-all}" != speed ]; then
step agree-float32 400 model=llama model.weights=random model.dtype=float32 "${AGREE[@]}"
step agree-bfloat16 200 model=llama model.weights=random model.dtype=bfloat16 "${AGREE[@]}"
step agree-smollm2 200 model=smollm2 "${AGREE[@]}"
fi
if [ "${PART:-all}" != agree ]; then
sweep tp-forward 300 "${LLAMA[@]}" "${FORWARD[@]}" hardware=tp hardware.num_gpus=2 $BATCHES
sweep one-gpu-forward 200 "${LLAMA[@]}" "${FORWARD[@]}" hardware=cuda $BATCHES
sweep tp-generate 300 "${LLAMA[@]}" "${GENERATE[@]}" hardware=tp hardware.num_gpus=2 $BATCHES
sweep one-gpu-generate 200 "${LLAMA[@]}" "${GENERATE[@]}" hardware=cuda $BATCHES

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

echo "=== 6. placement test on two GPUs ($(date +%T))"
timeout 200 python3 -m pytest -m gpu -q -rs -p no:cacheprovider \
  "tests/test_hardware.py::test_multi_gpu_split_on_two_gpus" >"$OUT/placement.log" 2>&1
echo "exit $?"; tail -3 "$OUT/placement.log"

fi
echo "=== agreement, sharded vs whole model"
python3 - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for name in ("agree-float32", "agree-bfloat16", "agree-smollm2"):
    path = out / name / "results.json"
    if not path.exists():
        print(f"{name}: no record"); continue
    r = json.loads(path.read_text())
    a = r.get("agreement") or {}
    status = r["status"] if r["status"] == "ok" else f"{r['status']}: {(r.get('error') or {}).get('message', '')[:200]}"
    figures = {k: a.get(k) for k in ("relative_max_diff", "tolerance", "top1_agreement", "kl_divergence", "agrees")}
    print(f"{name}: {status} {figures}")
print("=== weights per rank (each rank must hold about half)")
for path in sorted(out.glob("tp-*/*/results.json")):
    shard = (json.loads(path.read_text()).get("model") or {}).get("tensor_parallel")
    if shard:
        share = shard["rank_parameter_bytes"] / shard["model_parameter_bytes"]
        print(f"{path.parent.relative_to(out)}: {shard['rank_parameter_bytes'] / 2**30:.2f} of "
              f"{shard['model_parameter_bytes'] / 2**30:.2f} GiB ({share:.2f})")
EOF
