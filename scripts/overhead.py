"""Harness overhead: the same forward pass timed by the runner and by a minimal hand-written CUDA-event
loop, in one process. The runner's mean must be within 2% of the hand loop's.

    python scripts/overhead.py [model=llama] [scenario.sequence_length=512] ...   (needs a CUDA GPU)

The hand loop runs before and after the runner (to expose clock or thermal drift) and uses plain
transformers, not the runner's code. Prints one JSON object.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.app import execute  # noqa: E402
from runner.config import register_configs  # noqa: E402

DEFAULTS = [
    "model=llama",
    "model.weights=random",
    "hardware=cuda",
    "attention=sdpa",
    "scenario=forward",
    "scenario.batch_size=1",
    "scenario.sequence_length=512",
    "scenario.warmup_runs=5",
    "scenario.iterations=50",
    "compare.enabled=false",
]


def hand_loop(cfg, iterations: int, warmup: int) -> list[float]:
    config = AutoConfig.for_model(cfg.model.model_type, **OmegaConf.to_container(cfg.model.architecture))
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(
            config, dtype=getattr(torch, str(cfg.model.dtype.value)), attn_implementation=cfg.attention.implementation
        ).eval()
    ids = torch.randint(8, config.vocab_size, (cfg.scenario.batch_size, cfg.scenario.sequence_length), device="cuda")
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        for i in range(warmup + iterations):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(input_ids=ids, attention_mask=mask)
            end.record()
            end.synchronize()
            if i >= warmup:
                times.append(start.elapsed_time(end) / 1000)
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return times


def main() -> None:
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*DEFAULTS, *sys.argv[1:]])
    n, warmup = cfg.scenario.iterations, cfg.scenario.warmup_runs
    # a long first warm-up: GPU clocks ramp during the first seconds of work, and that must not count as overhead
    before = hand_loop(cfg, n, max(warmup, 30))
    with tempfile.TemporaryDirectory() as run_dir:
        record = execute(cfg, Path(run_dir), [*DEFAULTS, *sys.argv[1:]])
    if record["status"] != "ok":
        raise SystemExit(f"runner failed: {record['error']['message']}")
    gc.collect()
    torch.cuda.empty_cache()
    after = hand_loop(cfg, n, warmup)
    hand = statistics.fmean(before + after)
    runner = record["measurements"]["forward"]["latency"]["mean"]
    result = {
        "device": torch.cuda.get_device_name(),
        "overrides": [*DEFAULTS, *sys.argv[1:]],
        "hand_loop_ms": {
            "before": statistics.fmean(before) * 1e3,
            "after": statistics.fmean(after) * 1e3,
            "mean": hand * 1e3,
            "p50": statistics.median(before + after) * 1e3,
        },
        "runner_ms": {"mean": runner * 1e3, "p50": record["measurements"]["forward"]["latency"]["p50"] * 1e3},
        "overhead": runner / hand - 1,
        "overhead_vs_before": runner / statistics.fmean(before) - 1,
        "overhead_vs_after": runner / statistics.fmean(after) - 1,
        "within_2_percent": abs(runner / hand - 1) <= 0.02,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
