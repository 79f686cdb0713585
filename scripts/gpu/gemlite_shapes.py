"""Which shapes and row counts gemlite's kernels get wrong: each (bits, out x in) in its own process with
CUDA_LAUNCH_BLOCKING=1, one Linear product per row count 1..64 against the dequantized weight, so that an illegal
memory access names the call that made it instead of killing a whole job later. `int8wo_gemlite` crashed so in
smollm2's quality stage (docs/benchmarks.md §6i) and passed on the 7B llama shapes.

    python scripts/gpu/gemlite_shapes.py                 # smollm2's and the 7B llama's shapes, int4 and int8
    python scripts/gpu/gemlite_shapes.py --shapes 192x576 --bits 8
Prints one JSON line per (bits, shape): the rows that ran, the worst relative error, and the first failure. gemlite
autotunes each new row count, slowly with launches blocking: at f5f8a02 (H200) a process took about 40 s for rows
1..8 of one shape, so a whole run takes most of an hour; pick --shapes, --bits and --rows to fit."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SHAPES = ("576x576", "192x576", "1536x576", "576x1536", "4096x4096", "11008x4096", "4096x11008")


def one(bits: int, shape: str, rows: int, group: int) -> dict:
    import torch

    from runner.quant.gemlite_weights import gemlite_weight

    out, k = (int(v) for v in shape.split("x"))
    torch.manual_seed(0)
    weight = torch.randn(out, k, device="cuda", dtype=torch.bfloat16) * 0.02
    packed = gemlite_weight(weight, bits, group)
    dense = packed.dequantize(torch.bfloat16)
    found = {"bits": bits, "shape": shape, "ran": [], "worst_error": 0.0}
    for m in range(1, rows + 1):
        found["failed_at_rows"] = m  # stays if the process dies in this call
        print(json.dumps(found), flush=True)
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        got = torch.nn.functional.linear(x, packed).float()
        torch.cuda.synchronize()
        want = (x @ dense.t()).float()
        found["worst_error"] = max(found["worst_error"], float((got - want).norm() / want.norm()))
        found["ran"].append(m)
    found.pop("failed_at_rows")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    parser.add_argument("--bits", nargs="*", type=int, default=[8, 4])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per (bits, shape) process")
    parser.add_argument("--child", nargs=2, metavar=("BITS", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(int(args.child[0]), args.child[1], args.rows, args.group_size)), flush=True)
        return
    env = {**os.environ, "CUDA_LAUNCH_BLOCKING": "1"}
    for bits in args.bits:
        for shape in args.shapes:
            cmd = [sys.executable, __file__, "--child", str(bits), shape, "--rows", str(args.rows),
                   "--group-size", str(args.group_size)]  # fmt: skip
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
                lines, rc = done.stdout.strip().splitlines(), done.returncode
                tail = done.stderr.strip().splitlines()[-1:] if rc else []
            except subprocess.TimeoutExpired as cut:
                lines, rc, tail = (cut.stdout or b"").decode().strip().splitlines(), "timeout", []
            last = json.loads(lines[-1]) if lines else {"bits": bits, "shape": shape}
            last["ran"] = f"{last['ran'][0]}..{last['ran'][-1]}" if last.get("ran") else "none"
            print(json.dumps({**last, "rc": rc, "error": tail[0][:300] if tail else None}), flush=True)


if __name__ == "__main__":
    main()
