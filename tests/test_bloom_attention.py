"""Bloom's ALiBi attention through SDPA (runner/convert/bloom_attention.py): outputs and generated tokens agree with
eager Bloom, SDPA gets ALiBi (and the masks) as one float mask shared by the layers, the conversion is undone bit
for bit, the pipeline loads Bloom as eager, converts, records and reverses, and kernels that cannot take the bias
are refused with the reason."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import BloomConfig, BloomForCausalLM

from runner.config.load import to_run_config
from runner.convert import bloom_attention
from tests.conftest import compose_config
from tests.test_attention import config_error, fake_gpu  # noqa: F401  (fixture)
from tests.test_falcon_attention import TOLERANCE, batch


def pair(dtype=torch.float32, heads: int = 4) -> tuple[BloomForCausalLM, BloomForCausalLM]:
    """Eager Bloom and the same weights, converted (Transformers loads Bloom with eager attention only)."""
    torch.manual_seed(0)
    config = BloomConfig(hidden_size=16 * heads, n_layer=2, n_head=heads, vocab_size=256, initializer_range=0.2)
    eager = BloomForCausalLM._from_config(copy.deepcopy(config), attn_implementation="eager", dtype=dtype).eval()
    fused = BloomForCausalLM._from_config(copy.deepcopy(config), attn_implementation="eager", dtype=dtype).eval()
    fused.load_state_dict(eager.state_dict())
    return eager, fused


@pytest.fixture
def converted(reversed_at_teardown):
    return lambda model: reversed_at_teardown(model, bloom_attention.convert(model))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("padding_side", [None, "left", "right"])
@pytest.mark.parametrize("heads", [4, 6])  # 6: not a power of two, ALiBi's interleaved extra slopes
def test_forward_agrees_with_eager(heads, padding_side, dtype, converted):
    eager, fused = pair(dtype, heads)
    converted(fused)
    ids, mask = batch(padding_side)
    with torch.no_grad():
        expected = eager(ids, attention_mask=mask).logits.float()
        got = fused(ids, attention_mask=mask).logits.float()
    real = mask.bool()
    relative = (got - expected)[real].abs().max() / expected[real].abs().max()
    assert relative <= TOLERANCE[dtype], f"{heads} heads, padding {padding_side}, {dtype}: relative diff {relative:.3g}"


@pytest.mark.parametrize("padding_side", [None, "left"])
def test_generate_with_kv_cache_gives_eager_tokens(padding_side, converted, sdpa_calls):
    eager, fused = pair()
    conversion = converted(fused)
    ids, mask = batch(padding_side)
    options = {"attention_mask": mask, "max_new_tokens": 12, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        expected = eager.generate(ids, **options)  # eager Bloom never calls SDPA
        got = fused.generate(ids, **options)
    assert torch.equal(got, expected)
    # every step ran the converted layers on SDPA: the prompt, then one query per step against the growing cache
    assert len(sdpa_calls) == conversion.record["layers"] * options["max_new_tokens"]
    assert tuple(sdpa_calls[0].shape) == (3, 4, 16, 16)
    assert tuple(sdpa_calls[-1].shape) == (3, 4, 1, 16 + 11)


@pytest.fixture
def sdpa_calls(monkeypatch):
    """The float mask of every SDPA call."""
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, attn_mask=None, **kwargs):
        calls.append(attn_mask)
        return sdpa(query, key, value, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return calls


def test_sdpa_gets_alibi_and_the_causal_mask_as_one_float_mask_built_once(converted, sdpa_calls):
    _, fused = pair()
    converted(fused)
    ids, _ = batch()
    with torch.no_grad():
        fused(ids)
    first, second = sdpa_calls
    assert first is second  # built once per forward pass, shared by both layers
    assert first.dtype == torch.float32 and tuple(first.shape) == (3, 4, 16, 16)
    slopes = bloom_attention.modeling_bloom.build_alibi_tensor(torch.ones(1, 16), 4, torch.float32).view(4, 16)
    assert torch.equal(first[0, :, -1], slopes)  # the last query sees every key, with ALiBi's per-head slope
    assert (first[0, :, 0, 1:] == torch.finfo(torch.float32).min).all()  # the first sees only itself


def test_reversal_restores_state_dict_and_forward_bit_for_bit():
    _, fused = pair()
    ids, mask = batch("left")
    state = {k: v.clone() for k, v in fused.state_dict().items()}
    with torch.no_grad():
        before = fused(ids, attention_mask=mask).logits
    conversion = bloom_attention.convert(fused)
    assert fused.config._attn_implementation == "sdpa"
    with torch.no_grad():
        fused(ids, attention_mask=mask)
    record = conversion.reverse(fused)
    assert record["reversed"] == {"state_dict_restored": True, "forward_restored": True}
    assert fused.config._attn_implementation == "eager"
    after_state = fused.state_dict()
    assert after_state.keys() == state.keys()
    assert all(torch.equal(after_state[k], v) for k, v in state.items())
    with torch.no_grad():
        assert torch.equal(fused(ids, attention_mask=mask).logits, before)
    assert all(not {"forward", "fused_bias"} & vars(m).keys() for m in bloom_attention.attention_modules(fused))


def test_only_sdpa_is_converted():
    eager, _ = pair()
    assert bloom_attention.why_not(eager, "sdpa") is None
    assert bloom_attention.why_not(eager, "eager").startswith("attention 'eager': the conversion gives Bloom SDPA")
    assert bloom_attention.why_not(eager) is not None  # loaded eager, nothing else asked: the reference


def test_pipeline_loads_eager_converts_records_and_reverses(run_job):
    record = run_job("model=tiny-bloom", "scenario.padding_ratio=0.25", "scenario.padding_side=left")
    fused = record["convert"]["fused_attention"]
    assert record["convert"]["applied"] == ["fused_attention"]
    assert record["model"]["attn_implementation"] == "eager"  # what Transformers accepts for Bloom
    assert (fused["layers"], fused["implementation"], fused["loaded_with"]) == (2, "sdpa", "eager")
    assert fused["reversed"] == {"state_dict_restored": True, "forward_restored": True}
    assert record["attention"]["sdpa_kernels"] == ["flash"]  # the CPU's fused kernel takes the float mask
    assert record["attention"]["as_configured"] is True
    assert record["agreement"]["agrees"] is True


def test_eager_bloom_run_is_left_alone(run_job):
    record = run_job("model=tiny-bloom", "attention=eager")
    assert record["convert"]["applied"] == []
    assert record["attention"]["sdpa_kernels"] == []


def test_flash_kernel_refused_on_gpu_with_the_reason(fake_gpu):  # noqa: F811
    fake_gpu()
    message = config_error("attention=sdpa_flash", "model=tiny-bloom", "model.dtype=bfloat16")
    assert "model=tiny-bloom adds an ALiBi bias to the attention scores" in message
    assert "PyTorch's flash kernel takes no attention mask on CUDA" in message
    assert "needs attention=sdpa_efficient or attention=sdpa_cudnn" in message
    for option in ("sdpa_efficient", "sdpa_cudnn", "sdpa"):  # they take a float mask
        to_run_config(compose_config([f"attention={option}", "model=tiny-bloom", "model.dtype=bfloat16"]))


@pytest.mark.parametrize("option", ["fa2", "fa3", "fa4", "flex"])
def test_flash_attention_and_flex_refused_with_the_reason(option):
    message = config_error(f"attention={option}", "model=tiny-bloom", "model.dtype=bfloat16", "hardware=cpu")
    assert f"attention={option} cannot run model=tiny-bloom: Bloom adds an ALiBi bias" in message


def test_causal_mask_without_padding_is_aligned_to_the_last_key():
    """Queries after a cache (no padding, Transformers passes no mask): each sees the cache and itself."""
    alibi = torch.zeros(2, 1, 5)  # one sequence, two heads, five keys
    bias = bloom_attention.float_mask(alibi, None, batch=1, heads=2, queries=2, keys=5)
    assert (bias[0, 0] == 0).tolist() == [[True, True, True, True, False], [True] * 5]
