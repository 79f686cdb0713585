"""results.json holds the promised fields: config, environment, measurements, memory, rerun command."""

from __future__ import annotations

import importlib.metadata


def test_record_fields(run_job):
    record = run_job("attention=eager")
    for key in (
        "status",
        "command",
        "replay",
        "overrides",
        "config",
        "environment",
        "model",
        "measurements",
        "memory",
        "inputs",
        "duration_s",
        "started",
        "finished",
    ):
        assert key in record, key
    assert record["command"] == "python -m runner attention=eager"
    assert record["config"]["model"]["name"] == "tiny-llama" and record["config"]["attention"]["name"] == "eager"
    env = record["environment"]
    assert env["packages"]["torch"] == importlib.metadata.version("torch")  # the installed one, local tag and all
    assert {"python", "cpu", "cuda", "gpus", "packages"} <= env.keys()
    assert "transformers" in env["packages"] and "accelerate" in env["packages"]
    model = record["model"]
    assert model["weights"] == "random" and model["parameters"] > 0
    # footprint: float32 parameters (plus buffers) of tiny-llama
    assert model["footprint_bytes"] >= 4 * model["parameters"] * 0.99
    assert model["load_time_s"] > 0
    assert record["memory"]["cpu_rss_peak_bytes"] > 50 * 2**20


def test_reference_run_skips_comparison_and_others_compare(run_job):
    eager = run_job("attention=eager")
    assert eager["agreement"] == {"skipped": "this run is the reference"}
    sdpa = run_job("attention=sdpa")
    agreement = sdpa["agreement"]
    assert agreement["agrees"] is True and agreement["max_abs_diff"] < 1e-4
    assert agreement["top1_agreement"] == 1.0 and agreement["changes"] == ["attention=sdpa"]
    off = run_job("attention=sdpa", "compare.enabled=false")
    assert off["agreement"] == {"skipped": "compare.enabled=false"}
