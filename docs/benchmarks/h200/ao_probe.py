"""Probe (throwaway): 7B llama random bf16 decode, static cache, compile max-autotune + coordinate descent,
deferred stop check on CUDA; one torchao config per process (argv[1])."""
import json, os, sys, time, traceback
import torch
import torch._inductor.config as ic
ic.coordinate_descent_tuning = True
from transformers import AutoModelForCausalLM, CompileConfig, LlamaConfig
import transformers.generation.utils as gu
d = getattr(gu, "DeferredStopCheck", None)
if d is not None:
    d.is_supported = staticmethod(lambda *a, **k: True)
name = sys.argv[1]; mode = sys.argv[2] if len(sys.argv) > 2 else "max-autotune"
cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)
res = {"name": name, "mode": mode, "deferred": d is not None}
t0 = time.time()
try:
    torch.manual_seed(0)
    with torch.device("cuda"):
        m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa")
    m.eval()
    if name != "bf16":
        from torchao.quantization import quantize_
        import torchao.quantization as q
        c = {"int8wo": lambda: q.Int8WeightOnlyConfig(),
             "int4wo": lambda: q.Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d"),
             "int4hqq": lambda: q.Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d", int4_choose_qparams_algorithm="hqq"),
             "fp8wo": lambda: q.Float8WeightOnlyConfig(),
             "fp8dq": lambda: q.Float8DynamicActivationFloat8WeightConfig(granularity=q.PerRow())}[name]()
        quantize_(m, c)
    res["gpu_mem_gib"] = torch.cuda.memory_allocated() / 2**30
    ids = torch.randint(0, 32000, (1, 128), device="cuda")
    gen = dict(do_sample=False, cache_implementation="static",
               compile_config=CompileConfig(fullgraph=True, mode=mode))
    def run(n):
        torch.cuda.synchronize(); s = time.perf_counter()
        out = m.generate(ids, max_new_tokens=n, min_new_tokens=n, **gen)
        torch.cuda.synchronize(); return time.perf_counter() - s, out
    t1 = time.time(); run(144); res["first_call_s"] = time.time() - t1; run(144)
    short = min(run(16)[0] for _ in range(3)); long_, out = min((run(144) for _ in range(3)), key=lambda x: x[0])
    step = (long_ - short) / 128
    res.update(ms_per_token=step * 1e3, tok_s=1 / step, setup_s=time.time() - t0, first_tokens=out[0, 128:136].tolist())
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA]) as p:
        run(16)
    ev = sorted(p.key_averages(), key=lambda e: -e.device_time_total)[:8]
    res["top_kernels_ms_total_16tok"] = [(e.key[:90], round(e.device_time_total / 1e3, 3), e.count) for e in ev]
except Exception as e:
    res["error"] = repr(e)[:600]; res["tb"] = traceback.format_exc()[-1500:]
print(json.dumps(res), flush=True)
with open(os.environ.get("OUT", "/tmp") + f"/ao_{name}_{mode}.json", "w") as f:
    json.dump(res, f, indent=1)
