"""convert.fuse_projections: a Llama model's q/k/v and gate/up projections as one matrix each (Transformers' Phi3
layout) give the logits and greedy tokens of the original model, hold no second copy of the weights, and reverse
to the original modules, parameters and state dict, so `save` writes a checkpoint that plain Llama loads."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from runner.convert import fused_projections
from runner.errors import OptimizationNotApplied
from tests.conftest import COMPILED_ON_GPU
from tests.test_attention import config_error

WIDTHS = ("model.architecture.hidden_size=1024", "model.architecture.intermediate_size=2048")


def tiny_llama(**changes) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped queries: k and v are narrower than q, so the split points matter
        vocab_size=256,
        initializer_range=0.2,  # wide logits: a wrong split changes the argmax
        **changes,
    )
    return LlamaForCausalLM._from_config(config, attn_implementation="sdpa").eval()


def left_padded() -> dict:
    ids = torch.randint(3, 256, (2, 10), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    return {"input_ids": ids, "attention_mask": mask}


def greedy(model, batch) -> torch.Tensor:
    return model.generate(**batch, max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0)


@pytest.fixture
def fused(request):
    """A tiny llama, its logits and tokens before fusing, and the fusion (reversed at teardown if the test did not)."""
    model, batch = tiny_llama(), left_padded()
    with torch.inference_mode():
        logits, tokens = model(**batch).logits, greedy(model, batch)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    conversion = fused_projections.convert(model)
    yield model, batch, logits, tokens, state, conversion
    if "reversed" not in conversion.record:
        conversion.reverse(model)


def test_fused_model_gives_the_original_logits_and_greedy_tokens(fused):
    model, batch, logits, tokens, _, conversion = fused
    layer = model.model.layers[0]
    assert type(layer.self_attn).__name__ == "Phi3Attention" and type(layer.mlp).__name__ == "Phi3MLP"
    assert conversion.record["qkv_proj"] == [64 + 32 + 32, 64] and conversion.record["gate_up_proj"] == [192, 64]
    assert conversion.record["layers"] == 2
    assert not any(hasattr(m, "q_proj") or hasattr(m, "gate_proj") for m in model.modules())
    with torch.inference_mode():
        torch.testing.assert_close(model(**batch).logits, logits, atol=1e-5, rtol=1e-5)
        assert torch.equal(greedy(model, batch), tokens)  # with the KV cache, one padded row


def test_the_fused_matrix_is_the_only_copy_of_the_weights(fused):
    model, *_, conversion = fused
    kept = conversion.layers[0]
    fused_weight = model.model.layers[0].self_attn.qkv_proj.weight
    storage = fused_weight.untyped_storage().data_ptr()
    for name in ("q_proj", "k_proj", "v_proj"):
        assert getattr(kept.attention, name).weight.untyped_storage().data_ptr() == storage
    q_rows = kept.attention.q_proj.weight.shape[0]
    assert torch.equal(fused_weight[q_rows : q_rows + 32], kept.attention.k_proj.weight)


def test_reversal_restores_modules_weights_and_forward_bit_for_bit(fused, tmp_path):
    model, batch, logits, tokens, state, conversion = fused
    attention = conversion.layers[0].attention
    record = conversion.reverse(model)
    assert record["reversed"] == {"state_dict_restored": True, "forward_restored": True}
    assert model.model.layers[0].self_attn is attention  # the very module, not a rebuilt one
    after = model.state_dict()
    assert after.keys() == state.keys() and all(torch.equal(after[k], v) for k, v in state.items())
    storages = [attention.get_submodule(n).weight.untyped_storage().data_ptr() for n in ("q_proj", "k_proj", "v_proj")]
    assert len(set(storages)) == 3  # each weight in storage of its own again, not a view of the fused matrix
    with torch.inference_mode():
        assert torch.equal(model(**batch).logits, logits)
    model.save_pretrained(tmp_path)  # safetensors refuses weights that share storage
    reloaded = LlamaForCausalLM.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    with torch.inference_mode():
        assert torch.equal(greedy(reloaded, batch), tokens)


def test_a_projection_that_is_not_a_plain_linear_is_refused_with_its_name():
    model = tiny_llama(attention_bias=True)
    with pytest.raises(OptimizationNotApplied, match="q_proj has a bias"):
        fused_projections.convert(model)
    assert type(model.model.layers[0].self_attn).__name__ == "LlamaAttention"  # nothing was changed


def test_pipeline_fuses_records_agrees_and_reverses(run_job):
    record = run_job("convert.fuse_projections=true", "scenario=generate", "scenario.new_tokens=4")
    convert = record["convert"]
    assert convert["applied"] == ["fused_projections"]
    assert convert["fused_projections"]["qkv_proj"] == [128, 64]  # tiny-llama: 64 + 2 x 32 rows
    assert convert["fused_projections"]["reversed"] == {"state_dict_restored": True, "forward_restored": True}
    assert record["agreement"]["agrees"] is True
    assert "convert.fuse_projections=true" in record["agreement"]["changes"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=tiny-falcon"], "model=tiny-falcon is model_type=falcon: use a llama model"),
        (["quant=8bit"], "quant=8bit (method bitsandbytes) holds quantized layers that this conversion does not join"),
        (["hardware=tp", "hardware.tp_on_cpu=true"], "hardware=tp splits it"),
        (["+model.architecture.mlp_bias=true"], "sets mlp_bias"),
    ],
)
def test_refused_before_loading_naming_the_option(overrides, message):
    assert message in config_error("convert.fuse_projections=true", "hardware=cpu", *overrides)


def quantized_llama(bits: int) -> LlamaForCausalLM:
    """A tiny llama (inputs of 256: whole groups of 64), the runner's Triton word weights on every decoder Linear."""
    from torchao.quantization import quantize_

    from runner.quant.triton_weights import TritonWeightConfig

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=256, initializer_range=0.2,
    )
    model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa").eval()
    quantize_(model.model, TritonWeightConfig(bits=bits, group_size=64))
    return model


@pytest.mark.parametrize("bits", [4, 8])
def test_quantized_weights_fuse_into_one_quantized_matrix_and_reverse(bits):
    """quant=int4wo_triton/int8wo_triton: the packed words, scales (and minima) concatenate by rows, the fused layer
    gives the same logits and tokens, the original weights are views of it (no second copy), and reversing gives
    each back a storage of its own with the same values."""
    pytest.importorskip("torchao")
    model, batch = quantized_llama(bits), left_padded()
    with torch.inference_mode():
        logits, tokens = model(**batch).logits, greedy(model, batch)
    before = {k: v.dequantize() if hasattr(v, "dequantize") else v.clone() for k, v in model.state_dict().items()}
    conversion = fused_projections.convert(model)
    qkv = model.model.layers[0].self_attn.qkv_proj.weight
    assert type(qkv).__name__ == f"TritonInt{bits}Tensor" and tuple(qkv.shape) == (256 + 2 * 128, 256)
    k_proj = conversion.layers[0].attention.k_proj.weight
    assert k_proj.words.untyped_storage().data_ptr() == qkv.words.untyped_storage().data_ptr()  # a view
    with torch.inference_mode():
        assert torch.equal(model(**batch).logits, logits)
        assert torch.equal(greedy(model, batch), tokens)
    conversion.reverse(model)
    k_proj = model.model.layers[0].self_attn.k_proj.weight
    assert k_proj.words.untyped_storage().data_ptr() != qkv.words.untyped_storage().data_ptr()
    after = model.state_dict()
    assert after.keys() == before.keys()
    for name, value in before.items():
        restored = after[name].dequantize() if hasattr(after[name], "dequantize") else after[name]
        assert torch.equal(restored, value), name


def test_quantized_weights_of_different_layouts_are_not_concatenated():
    pytest.importorskip("torchao")
    from runner.quant.triton_weights import TritonInt4Tensor

    w = torch.randn(8, 128)
    with pytest.raises(ValueError, match="one class, attributes and dtype"):
        torch.cat([TritonInt4Tensor.from_hp(w, 64), TritonInt4Tensor.from_hp(w, 128)])
    with pytest.raises(NotImplementedError, match="output rows"):
        torch.cat([TritonInt4Tensor.from_hp(w, 64)] * 2, dim=1)
    for mixed in ([TritonInt4Tensor.from_hp(w, 64), w], [w, TritonInt4Tensor.from_hp(w, 64)]):
        with pytest.raises(ValueError, match="by rows: one class"):
            torch.cat(mixed)


@pytest.mark.parametrize(
    ("overrides", "fused"),
    [
        (["quant=int4wo_triton", *WIDTHS], True),  # left automatic: the runner's Triton kernels prefer fused matrices
        (["quant=int4wo_triton", *WIDTHS, "convert.fuse_projections=false"], False),
        ([], False),  # bf16: decodes slower fused on the H200, so automatic leaves it as it is
    ],
    ids=["int4wo_triton-automatic", "int4wo_triton-off", "bf16-automatic"],
)
def test_automatic_fusion_where_the_quantized_kernels_read_fused_matrices_faster(run_job, overrides, fused):
    pytest.importorskip("torchao")
    record = run_job(*overrides, "scenario=generate", "scenario.new_tokens=4")
    assert record["status"] == "ok", record.get("error")
    assert ("fused_projections" in record["convert"]["applied"]) is fused
    assert ("convert.fuse_projections (automatic)" in record["agreement"]["changes"]) is fused
    if fused:
        section = record["convert"]["fused_projections"]
        assert section["chosen_by"].startswith("automatic: quant=int4wo_triton's method prefers fused matrices")
        assert section["reversed"] == {"state_dict_restored": True, "forward_restored": True}
        assert record["agreement"]["agrees"] is True


def test_automatic_fusion_skips_runs_it_cannot_apply_to_instead_of_refusing_them():
    from runner.config.load import to_run_config
    from tests.conftest import compose_config

    def wanted(*overrides: str) -> bool:
        return fused_projections.wanted(to_run_config(compose_config(["hardware=cpu", *overrides])))

    assert wanted("quant=int8wo_triton")
    assert not wanted("quant=int8wo_triton", "model=tiny-falcon")  # not a Llama architecture: no error, no fusion
    assert not wanted("quant=int8wo_triton", "convert.fuse_projections=false")
    assert not wanted("quant=int8wo")  # torchao's method does not ask for it


def test_automatic_fusion_skips_a_method_whose_weights_do_not_join(monkeypatch):
    from runner.config.load import to_run_config
    from runner.quant.methods.triton import Triton
    from tests.conftest import compose_config

    monkeypatch.setattr(Triton, "weights_join_rows", False)
    assert not fused_projections.wanted(to_run_config(compose_config(["hardware=cpu", "quant=int8wo_triton"])))


def test_automatic_fusion_leaves_a_model_whose_layers_do_not_join_unfused(run_job):
    """q_proj left unquantized beside quantized k and v: automatic fusion skips the model (true would fail)."""
    pytest.importorskip("torchao")
    overrides = ["quant=int4wo_triton", *WIDTHS, "quant.modules_to_not_convert=[q_proj]"]
    record = run_job(*overrides, "scenario=generate", "scenario.new_tokens=2")
    assert record["status"] == "ok", record.get("error")
    assert "fused_projections" not in record["convert"]["applied"]
    failed = run_job(*overrides, "convert.fuse_projections=true", "scenario=generate", "scenario.new_tokens=2")
    assert failed["status"] == "failed" and "only weights of one layout" in failed["error"]["message"]


def test_bad_combination_exits_2_in_one_line(cli):
    result = cli("convert.fuse_projections=true", "model=tiny-bert", "hardware=cpu")
    assert result.returncode == 2
    assert "convert.fuse_projections=true fuses the projections of Llama-architecture models" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.gpu
@pytest.mark.parametrize(
    "quant",
    [
        [],
        # the runner's Triton kernels on the fused shapes (inputs of 1024: whole groups)
        ["quant=int4wo_triton", "model.dtype=bfloat16", *WIDTHS],
        ["quant=int8wo_triton", "model.dtype=bfloat16", *WIDTHS],
    ],
    ids=["bf16", "int4wo_triton", "int8wo_triton"],
)
def test_compiled_decode_with_fused_projections_on_the_gpu(run_job, quant):
    """The path the conversion is for: the compiled decode step (CUDA graphs, max-autotune) over the fused matrices."""
    overrides = ["scenario.new_tokens=16", "convert.fuse_projections=true", *quant]
    record = run_job(*COMPILED_ON_GPU, *overrides, fast=False)
    assert record["status"] == "ok", record.get("error")
    # quantized: then the fused weights' Linears made kernel Linears before compiling, reversed before them
    assert record["convert"]["applied"] == ["fused_projections"] + (["kernel_linears"] if quant else [])
    assert record["convert"]["compile"]["first_call_s"] > 0
    assert record["convert"]["fused_projections"]["reversed"]["state_dict_restored"] is True
    assert record["agreement"]["agrees"] is True
