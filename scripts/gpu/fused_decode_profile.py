"""Where the fused decode step's time goes (convert.fused_decode, runner/fused_decode/): the 7B llama shapes with
random bf16 weights, a 128-token prompt, the step captured as a CUDA graph as a job runs it. Prints (and writes with
--out) one JSON: ms per token over `--tokens` graph replays timed with CUDA events (median of rounds), its share of
4.8 TB/s (the weights a token reads, plus its KV cache), and each kernel's mean time per step and share of the
bandwidth, from torch.profiler over replays (CUPTI sees the kernels inside the graph).

    python scripts/gpu/fused_decode_profile.py --out fused_decode_profile.json [--no-pdl] [--layers 32]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-pdl", action="store_true", help="launch every kernel without PDL")
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
    decoder = FusedDecoder(model, [2])
    if args.no_pdl:
        decoder.pdl = False
    ids = torch.randint(3, 32000, (1, args.prompt), device="cuda")
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "pdl": decoder.pdl}
    with torch.inference_mode():
        decoder.generate(inputs, args.tokens, lambda: None)  # kernels compiled, graph captured, agreement checked
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
    kernels = defaultdict(lambda: [0.0, 0])
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kernels[event.name][0] += event.device_time_total
            kernels[event.name][1] += 1
    results["kernels_per_step_us"] = {
        name: {"us_per_step": round(total / steps, 2), "calls_per_step": count / steps}
        for name, (total, count) in sorted(kernels.items(), key=lambda kv: -kv[1][0])
    }
    results["kernel_sum_us_per_step"] = round(sum(t for t, _ in kernels.values()) / steps, 1)
    text = json.dumps(results, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
