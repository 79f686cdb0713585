"""Where the fused decode step's time goes (convert.fused_decode, runner/fused_decode/): the 7B llama shapes with
random bf16 weights, a 128-token prompt, the step captured as a CUDA graph as a job runs it. Prints (and writes with
--out) one JSON: ms per token over `--tokens` graph replays timed with CUDA events (median of rounds), its share of
4.8 TB/s (the weights a token reads, plus its KV cache), and each kernel's mean time per step and share of the
bandwidth, from torch.profiler over replays (CUPTI sees the kernels inside the graph).

    python scripts/gpu/fused_decode_profile.py --out fused_decode_profile.json [--pdl] [--layers 32] [--tune]

--tune first times each kernel's candidate configs alone (32 calls, one per layer's weights, as one CUDA graph) and
runs the step with the fastest of each.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

from runner.measure.timer import replayed_candidates

STEP_ORDER = ("qkv", "attend", "o", "gate_up", "down")  # a layer's kernels in launch order; then lm_head, pick


def gemv_candidates(k: int, glu: bool) -> list[tuple[int, int, int]]:
    whole = 1 << (k - 1).bit_length()
    tiles = sorted({512, 1024, 2048, min(whole, 4096)})
    return [
        (n, bk, w) for n in (1, 2, 4, 8) for bk in tiles for w in (4, 8)
        if bk <= whole and n * bk * (2 if glu else 1) <= 16384 and n * bk >= 32 * w
    ]  # fmt: skip


def tune(decoder, rounds: int) -> dict:
    """Per kernel, each candidate config's microseconds a call (32 calls over the layers' own weights); the decoder
    takes the fastest of each."""
    from runner.fused_decode import kernels

    d, dev, pdl = decoder, decoder.device, decoder.pdl
    found = {}

    def fastest(name, configs, run_for, keep=6, **note):
        seconds = replayed_candidates(
            configs, run_for, rounds, dev, repeats=5,
            on_error=lambda c, e: print(f"{name} {c}: {type(e).__name__}", file=sys.stderr),
        )  # fmt: skip
        us = {config: s / len(d.layers) * 1e6 for config, s in seconds.items()}
        best = min(us, key=us.get)
        found[name] = {"config": list(best), "us": round(us[best], 2), **note,
                       "all": sorted((round(t, 2), list(c)) for c, t in us.items())[:keep]}  # fmt: skip
        d.configs[name] = best
        print(f"{name}: {best} {us[best]:.2f} us", file=sys.stderr, flush=True)
        return best

    products = {
        "qkv": (lambda L: L.qkv, d.h, d.qkv, {"norm": lambda L: L.attention_norm}, False),
        "o": (lambda L: L.o, d.attended, d.h, {"residual": True}, False),
        "gate_up": (lambda L: L.gate_up, d.h, d.glu, {"norm": lambda L: L.mlp_norm, "glu": True}, True),
        "down": (lambda L: L.down, d.glu, d.h, {"residual": True}, False),
        "lm_head": (lambda L: d.lm_head, d.h, d.logits, {"norm": lambda L: d.final_norm}, False),
    }
    for name, (weight, x, y, extra, glu) in products.items():

        def run_for(config, weight=weight, x=x, y=y, extra=extra):
            def run():
                for layer in d.layers:
                    kernels.gemv(
                        x, weight(layer), y, config, norm=extra["norm"](layer) if "norm" in extra else None,
                        eps=d.eps, glu=extra.get("glu", False), residual=y if extra.get("residual") else None, pdl=pdl,
                    )  # fmt: skip

            return run

        fastest(name, gemv_candidates(weight(d.layers[0]).shape[1], glu), run_for)
    d.pos.fill_(192)
    group = d.q_heads // d.kv_heads

    def attend_for(config):
        scratch = kernels.attend_scratch(d.kv_heads, group, d.head_dim, config[1], dev)

        def run():
            for index in range(len(d.layers)):
                kernels.attend(d.qkv, d.cos, d.sin, d.k_cache[index], d.v_cache[index], d.attended, d.pos, d.scale,
                               d.q_heads, d.kv_heads, d.head_dim, pdl=pdl, config=config, scratch=scratch)  # fmt: skip

        return run

    configs = [(bt, sp, st, 4) for bt in (16, 32, 64) for sp in (1, 2, 4, 8) for st in (1, 2, 3)]
    best = fastest("attend", configs, attend_for, keep=8, at_position=192)
    d.scratch = kernels.attend_scratch(d.kv_heads, group, d.head_dim, best[1], dev)
    d.graph = None
    d.record["kernel_configs"] = {k: list(v) for k, v in d.configs.items()}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pdl", action="store_true", help="launch every kernel with PDL (the decoder's default: off)")
    parser.add_argument("--tune", action="store_true", help="time each kernel's candidate configs first")
    parser.add_argument("--out")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU; this PyTorch sees none")
    from transformers import LlamaConfig, LlamaForCausalLM

    from runner.convert import fused_projections
    from runner.fused_decode.decoder import FusedDecoder

    config = LlamaConfig(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=args.layers, num_attention_heads=32,
        num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa").eval()
    fused_projections.convert(model)
    decoder = FusedDecoder(model, [2], pdl=args.pdl)
    ids = torch.randint(3, 32000, (1, args.prompt), device="cuda")
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "pdl": decoder.pdl}
    with torch.inference_mode():
        decoder.generate(inputs, args.tokens, lambda: None)  # kernels compiled, graph captured, agreement checked
        if args.tune:
            results["tuned"] = tune(decoder, args.rounds)
            decoder.generate(inputs, args.tokens, lambda: None)  # captured again with the picks
        results["record"] = decoder.record
        per_round = []
        for _ in range(args.rounds):
            decoder.prefill(inputs)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.tokens - 1):
                decoder.graph.replay()
            end.record()
            end.synchronize()
            per_round.append(start.elapsed_time(end) / (args.tokens - 1))
        ms = sorted(per_round)[len(per_round) // 2]
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        weights -= model.model.embed_tokens.weight.numel() * 2  # one row a token, not the table
        cache = 2 * args.layers * 4096 * 2 * (args.prompt + args.tokens // 2)  # mean cache read a step
        results |= {
            "ms_per_token": round(ms, 4),
            "rounds_ms": [round(x, 4) for x in per_round],
            "bytes_per_token": weights + cache,
            "share_of_4.8TB/s": round((weights + cache) / (ms / 1e3) / 4.8e12, 4),
        }
        print(f"{ms:.4f} ms/token, {results['share_of_4.8TB/s']:.1%} of 4.8 TB/s", file=sys.stderr, flush=True)
        decoder.prefill(inputs)
        steps = 16
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                decoder.graph.replay()
            torch.cuda.synchronize()
    # each kernel by its place in the step: a layer's five in launch order, then lm_head and the pick
    order = [*STEP_ORDER * args.layers, "lm_head", "pick"]
    events = sorted(
        (e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and e.name.startswith("_")),
        key=lambda e: e.time_range.start,
    )
    kernels = defaultdict(lambda: [0.0, 0])
    for index, event in enumerate(events):
        kernels[order[index % len(order)]][0] += event.device_time_total
        kernels[order[index % len(order)]][1] += 1
    results["kernel_events"] = len(events)
    results["kernels_per_step_us"] = {
        name: {"us_per_step": round(total / steps, 2), "us_per_call": round(total / count, 2)}
        for name, (total, count) in sorted(kernels.items(), key=lambda kv: -kv[1][0])
    }
    results["kernel_sum_us_per_step"] = round(sum(t for t, _ in kernels.values()) / steps, 1)
    text = json.dumps(results, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
