"""A CPU probe of the host's time per decode step in transformers' generate loop (docs/benchmarks.md §6l): a 2-layer
llama (tiny widths, so the compute is small) compiled on the CPU through transformers' private
`CompileConfig._compile_all_devices` (the runner compiles on CUDA only), each part of the loop timed. ROOT picks the
checkout, so two trees alternate in one shell:

    for i in 1 2 3 4; do for r in OLD_TREE NEW_TREE; do ROOT=$r python host_loop_cpu_probe.py 2 none; done; done
"""

import collections
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

R = os.environ.get("ROOT", str(Path(__file__).resolve().parents[2]))  # default: this checkout
sys.path.insert(0, R + "/scripts")
sys.path.insert(0, R)
from bench_context import prepared, run_config
from transformers import CompileConfig

CompileConfig._compile_all_devices = True
import transformers
from transformers.generation import logits_process, stopping_criteria

layers = int(sys.argv[1])
quant = sys.argv[2]
arch = [
    "model.architecture.hidden_size=128",
    "model.architecture.intermediate_size=256",
    f"model.architecture.num_hidden_layers={layers}",
    "model.architecture.num_attention_heads=2",
    "model.architecture.num_key_value_heads=2",
    "model.architecture.vocab_size=256",
]
cfg = run_config(
    [
        "model=llama",
        "model.weights=random",
        "hardware=cpu",
        "scenario=generate",
        "scenario.batch_size=1",
        "scenario.sequence_length=16",
        "scenario.new_tokens=144",
        "scenario.warmup_runs=2",
        f"quant={quant}",
        "compare.enabled=false",
        "model.dtype=float32",
        "convert.compile_options.mode=default",
        *arch,
        *sys.argv[3:],
    ]
)
cfg = dataclasses.replace(cfg, convert=dataclasses.replace(cfg.convert, compile=True))
ctx = prepared(cfg, Path(tempfile.mkdtemp()))
b = ctx.backend
model = b.model
spent = collections.Counter()


def timed(owner, name, label):
    orig = getattr(owner, name)

    @__import__("functools").wraps(orig)
    def f(*a, **k):
        t = time.perf_counter()
        r = orig(*a, **k)
        spent[label] += time.perf_counter() - t
        return r

    setattr(owner, name, f)


timed(model, "prepare_inputs_for_generation", "prepare_inputs")
timed(model, "_update_model_kwargs_for_generation", "update_kwargs")
timed(logits_process.LogitsProcessorList, "__call__", "logits_processors")
timed(stopping_criteria.StoppingCriteriaList, "__call__", "stopping_criteria")
compiled = model._compiled_call if getattr(model, "_compiled_call", None) is not None else None
timed(model, "_compiled_call", "compiled_forward")


def run(n):
    spent.clear()
    with b.inference_context():
        t = time.perf_counter()
        b.generate(ctx.inputs, n, on_step=lambda: None)
        total = time.perf_counter() - t
    return total, dict(spent)


run(16)
run(144)
best = {}
for n in (16, 144):
    best[n] = min((run(n) for _ in range(5)), key=lambda r: r[0])
steps = 128
tot = (best[144][0] - best[16][0]) / steps * 1e3
fwd = (best[144][1]["compiled_forward"] - best[16][1].get("compiled_forward", 0)) / steps * 1e3
print(
    transformers.__version__,
    quant,
    layers,
    "layers: host ms/step %.3f, outside the compiled forward %.3f" % (tot, tot - fwd),
)
for k in best[144][1]:
    print("  %-20s %.3f ms/step" % (k, (best[144][1][k] - best[16][1].get(k, 0)) / steps * 1e3))
