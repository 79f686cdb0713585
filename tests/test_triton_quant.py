"""quant=int4wo_triton and int8wo_triton: the runner's own Triton matrix-vector kernels over int32-word weights.

On the CPU: the word layouts rebuild the weights, the options reach transformers' TorchAoConfig, bad options are
refused, a job quantizes and agrees (its layers dequantize there), the model compiles as one graph. The kernels
themselves run in Triton's interpreter on the CPU where Triton is installed (not in CI: PyTorch's CPU wheels do not
ship it), and on a GPU under `pytest -m gpu`."""

from __future__ import annotations

import importlib.util
import sys
import textwrap

import pytest
import torch
from omegaconf import OmegaConf

from runner.config.load import to_run_config
from runner.config.model import DType
from runner.config.quant import QuantConfig
from runner.errors import ConfigError
from runner.quant import method_of
from runner.quant.int4_grid import levels
from runner.quant.word_packing import int4_weight, int8_weight, pack_int4, pack_int8
from tests.conftest import COMPILED_ON_GPU, compose_config, interpreted

pytest.importorskip("torchao")

from runner.quant.triton_weights import TritonInt4Tensor, TritonInt8Tensor, TritonWeightConfig  # noqa: E402

TINY_LLAMA_LINEARS = 14  # 2 layers x (q, k, v, o, gate, up, down); lm_head stays unquantized
WIDTHS = ("model.architecture.hidden_size=1024", "model.architecture.intermediate_size=2048")
SUBCLASS = {"int4wo_triton": "TritonInt4Tensor", "int8wo_triton": "TritonInt8Tensor"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("group", [32, 64, 128])
def test_int4_words_hold_each_level_where_the_kernel_reads_it(group, dtype):
    torch.manual_seed(0)
    weight = (torch.randn(24, 2 * group) * 0.02).to(dtype)
    words, scale, low = pack_int4(weight, group)
    assert words.dtype == torch.int32 and words.shape == (24, 2 * group // 8)
    q, s, z = levels(weight, group)
    per = group // 8
    # nibble i of word j in group g holds input g * group + i * per + j
    for g, i, j in [(0, 0, 0), (0, 7, per - 1), (1, 3, 2), (1, 5, per - 1)]:
        nibble = (words[:, g * per + j] >> (4 * i)) & 0xF
        assert torch.equal(nibble, q[:, g * group + i * per + j].to(torch.int32))
    rebuilt = int4_weight(words, scale, low, group)
    # level * scale + minimum, the scale and minimum as stored (in the weight's dtype); bfloat16 arithmetic rounds
    stored = scale.float()[..., None], low.float()[..., None]
    expected = (q.float().reshape(24, 2, group) * stored[0] + stored[1]).reshape(24, -1)
    step = float(scale.float().max())
    assert rebuilt.dtype == dtype and torch.allclose(rebuilt.float(), expected, rtol=0.01, atol=step / 20)


def test_int8_words_round_trip_within_half_a_level():
    torch.manual_seed(0)
    weight = torch.randn(40, 576) * 0.02
    words, scale = pack_int8(weight)
    assert words.shape == (40, 144) and scale.shape == (40,)
    # byte i of word j in chunk c holds input c * 32 + i * 8 + j, stored as level + 128
    level = torch.round(weight[3, 32 + 2 * 8 + 5] / scale[3]).int() + 128
    assert int((words[3, 8 + 5] >> 16) & 0xFF) == int(level)
    assert ((int8_weight(words, scale) - weight).abs() <= scale[:, None] / 2 + 1e-7).all()


def test_layers_whose_inputs_do_not_fill_whole_groups_are_left_as_they_are():
    from torchao.quantization import quantize_

    model = torch.nn.Sequential(torch.nn.Linear(192, 64), torch.nn.Linear(64, 48))  # 192 = 1.5 groups of 128
    quantize_(model, TritonWeightConfig(bits=4, group_size=128))
    assert type(model[0].weight) is torch.nn.Parameter and type(model[0].weight.data) is torch.Tensor
    with pytest.raises(ValueError, match="bits 4"):
        quantize_(torch.nn.Linear(64, 8), TritonWeightConfig(bits=3))


@pytest.mark.parametrize(
    ("quant", "bits", "group_size"),
    [(["quant=int4wo_triton"], 4, 128), (["quant=int4wo_triton", "quant.group_size=64"], 4, 64)]
    + [(["quant=int8wo_triton"], 8, 128)],
)
def test_the_options_reach_transformers_torchao_config(quant, bits, group_size):
    node = OmegaConf.merge(OmegaConf.structured(QuantConfig), compose_config(["hardware=cpu", *quant]).quant)
    config = method_of(node).quantization_config(OmegaConf.to_object(node), DType.bfloat16)
    assert type(config).__name__ == "TorchAoConfig"
    assert config.quant_type == TritonWeightConfig(bits=bits, group_size=group_size)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["quant=int4wo_triton", "quant.group_size=100"], "group_size=100: quant=int4wo_triton takes 32, 64, 128"),
        (["quant=int8wo_triton", "quant.bits=3"], "quant.bits=3: the runner's Triton kernels take 4 or 8"),
        (
            ["quant=int4wo_triton", "quant.int4_choose_qparams_algorithm=hqq"],
            "int4_choose_qparams_algorithm=hqq: quant=int4wo_triton uses the plain min/max grid",
        ),
    ],
)
def test_what_the_kernels_cannot_take_is_refused_before_loading(overrides, message):
    with pytest.raises(ConfigError, match=message):
        to_run_config(compose_config(["hardware=cpu", *overrides]))


@pytest.mark.parametrize(("quant", "ratio"), [("int4wo_triton", (0.5 + 8 / 128) / 4), ("int8wo_triton", 1 / 4)])
def test_a_job_quantizes_every_linear_layer_and_agrees_on_the_cpu(run_job, quant, ratio):
    record = run_job(f"quant={quant}", *WIDTHS)
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["by_scheme"] == {SUBCLASS[quant]: TINY_LLAMA_LINEARS}
    # float32 weights: 4 bytes -> half a byte (int4, plus a float32 scale and minimum per 128) or one byte (int8)
    assert ratio * 0.99 < q["linear_weight_ratio"] < ratio * 1.03
    assert record["agreement"]["agrees"], record["agreement"]


def test_word_weights_multiply_as_their_dequantized_weights_and_compile_as_one_graph():
    from torchao.quantization import quantize_

    from runner.quant.kernel_linears import KernelLinear, KernelLinears

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.Linear(512, 256))
    quantize_(model[0], TritonWeightConfig(bits=4, group_size=64))
    quantize_(model[1], TritonWeightConfig(bits=8))
    assert isinstance(model[0].weight, TritonInt4Tensor) and isinstance(model[1].weight, TritonInt8Tensor)
    x = torch.randn(2, 256)
    linear = torch.nn.functional.linear
    hidden = linear(x, model[0].weight.dequantize(), model[0].bias)
    expected = linear(hidden, model[1].weight.dequantize(), model[1].bias)
    assert torch.allclose(model(x), expected, atol=1e-5)
    # the bias by keyword too, and added in the input's dtype
    assert torch.allclose(linear(x, model[0].weight, bias=model[0].bias), hidden, atol=1e-5)
    half = linear(x.half(), model[0].weight, model[0].bias.bfloat16())
    assert half.dtype == torch.float16
    # as convert.compile does: each Linear holds its weight's packed tensors as plain parameters and calls the
    # product on them, so the compiled graph rebuilds no subclass (torchao's unwrapping guards each layer's rebuild)
    weights = [model[0].weight, model[1].weight]
    before = [(list(m._parameters), sorted(vars(m))) for m in model]
    linears = KernelLinears(model)
    assert all(type(m) is KernelLinear for m in model) and not any(hasattr(m, "weight") for m in model)
    assert all(type(p) is torch.nn.Parameter for p in model.parameters())
    assert {name for name, _ in model.named_parameters()} == {
        "0.words", "0.scale", "0.low", "0.bias", "1.words", "1.scale", "1.bias"
    }  # fmt: skip
    assert torch.allclose(model(x), expected, atol=1e-5)
    assert torch.allclose(torch.compile(model, fullgraph=True)(x), expected, atol=1e-4)
    record = linears.reverse(model)
    assert record["kind"] == "kernel_linears" and record["layers"] == 2 and record["reversed"] is True
    assert all(type(m) is torch.nn.Linear for m in model) and [model[0].weight, model[1].weight] == weights
    assert model[0].weight is weights[0] and model[1].weight is weights[1]  # the original Parameters, back
    assert [(list(m._parameters), sorted(vars(m))) for m in model] == before  # in their order, nothing left over
    assert torch.allclose(model(x), expected, atol=1e-5)


# The kernels in Triton's interpreter (TRITON_INTERPRET=1, read when triton is imported: a fresh process), with one
# autotuning config at a time (the interpreter cannot time them) so each kernel runs once per shape and config: 4 and 8
# rows a program, with and without the prefetch. The shapes leave a partial last block of rows (45, 19, 13 rows) or
# fill whole blocks (16 rows: EVEN_N, no row masks) and take one to five loop steps (int4 groups of 32, 128 and 256);
# the inputs have a mean of 1, which the kernels' offsets must survive. Reference: the dequantized weights in float64.
INTERPRETED = textwrap.dedent(
    """
    import torch
    import runner.quant.triton_gemv as tg
    from runner.quant.word_packing import int4_weight, int8_weight, pack_int4, pack_int8
    every = {kernel: kernel.configs for kernel in (tg._int4_gemv, tg._int8_gemv)}
    torch.manual_seed(0)
    worst = {"int4": 0.0, "int8": 0.0}
    for rows_per_program in (4, 8):
        for prefetch in (False, True):
            for kernel, configs in every.items():
                wanted = (rows_per_program, 128, prefetch)
                kernel.configs = [
                    c for c in configs if (c.kwargs["BLOCK_N"], c.kwargs["BLOCK_W"], c.kwargs["PREFETCH"]) == wanted
                ][:1]
                kernel.cache.clear()
            for out, k, group, rows in [(45, 1408, 128, 1), (19, 320, 32, 3), (13, 2304, 256, 2), (16, 512, 64, 1)]:
                w = torch.randn(out, k) * 0.02
                x = torch.randn(rows, k) + 1.0
                words, scale, low = pack_int4(w, group)
                want = x.double() @ int4_weight(words, scale, low, group).double().t()
                got = tg.int4_gemv(x, words, scale, low, group).double()
                worst["int4"] = max(worst["int4"], float((got - want).norm() / want.norm()))
                words8, scale8 = pack_int8(w)
                want8 = x.double() @ int8_weight(words8, scale8).double().t()
                got8 = tg.int8_gemv(x, words8, scale8).double()
                worst["int8"] = max(worst["int8"], float((got8 - want8).norm() / want8.norm()))
    print(worst["int4"], worst["int8"])
    """
)


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed (CPU PyTorch)")
def test_the_kernels_match_the_dequantized_product_in_tritons_interpreter():
    stdout = interpreted(INTERPRETED)
    # float32 sums against float64, inputs of mean 1: 8.5e-5 for both here; int8's offsets subtracted once per row
    # instead of once per loop step gave 5.9e-3 (5ea930d's kernel, checked), bfloat16's own rounding 4e-3
    int4, int8 = (float(v) for v in stdout.split()[-2:])
    assert int4 < 3e-4 and int8 < 3e-4, (int4, int8)


@pytest.mark.gpu
@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("shape", [(4096, 4096), (11008, 4096), (4096, 11008), (1536, 576)])
def test_the_kernels_match_the_dequantized_product_on_the_gpu(shape, rows):
    from runner.quant import triton_gemv

    torch.manual_seed(0)
    out, k = shape
    w = (torch.randn(out, k, device="cuda") * 0.02).to(torch.bfloat16)
    x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
    group = 64 if k % 128 else 128
    words, scale, low = pack_int4(w, group)
    want = x.float() @ int4_weight(words, scale, low, group).float().t()
    got = triton_gemv.int4_gemv(x, words, scale, low, group).float()
    assert float((got - want).norm() / want.norm()) < 0.01  # the output's bfloat16 rounding
    words8, scale8 = pack_int8(w)
    want8 = x.float() @ int8_weight(words8, scale8).float().t()
    assert float((triton_gemv.int8_gemv(x, words8, scale8).float() - want8).norm() / want8.norm()) < 0.01


@pytest.mark.gpu
@pytest.mark.parametrize("quant", ["int4wo_triton", "int8wo_triton"])
def test_compiled_decode_with_the_runners_kernels_on_the_gpu(run_job, quant):
    overrides = [f"quant={quant}", *WIDTHS, "model.dtype=bfloat16", "scenario.new_tokens=8"]
    record = run_job(*COMPILED_ON_GPU, *overrides, fast=False)
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["quantization"]["by_scheme"] == {SUBCLASS[quant]: TINY_LLAMA_LINEARS}
    assert record["convert"]["kernel_linears"]["reversed"] is True
    # q/k/v and gate/up fused (automatic for these quants): 2 layers x (q/k/v, o, gate/up, down)
    assert record["convert"]["kernel_linears"]["layers"] == 8


def test_the_record_names_the_config_each_kernels_autotuning_chose(monkeypatch):
    """convert.compile's reversal adds the kernels' autotuning choices to the record (`kernel_configs`): empty where
    no kernel ran, else one entry per kernel and shape."""
    import types

    from torchao.quantization import quantize_

    from runner.quant.kernel_linears import KernelLinears

    model = torch.nn.Sequential(torch.nn.Linear(256, 64))
    quantize_(model, TritonWeightConfig(bits=4, group_size=64))
    monkeypatch.delitem(sys.modules, "runner.quant.triton_gemv", raising=False)
    assert KernelLinears(model).reverse(model)["kernel_configs"] == {}
    assert isinstance(model[0].weight, TritonInt4Tensor)  # the weight is back
    # this model's shape, and one an earlier job of the same process tuned
    chosen = {(64, 32, 64, "torch.bfloat16"): "BLOCK_N: 8, BLOCK_W: 128", (4096, 512, 128, "torch.bfloat16"): "other"}
    tuned = types.SimpleNamespace(keys=["N", "words_per_row", "GROUP"], cache=chosen)
    untouched = types.SimpleNamespace(keys=["N", "words_per_row"], cache={})
    kernels = types.SimpleNamespace(_int4_gemv=tuned, _int8_gemv=untouched)
    monkeypatch.setitem(sys.modules, "runner.quant.triton_gemv", kernels)
    record = KernelLinears(model).reverse(model)
    label = "N=64, words_per_row=32, GROUP=64, dtypes=torch.bfloat16"
    assert record["kernel_configs"] == {"_int4_gemv": {label: "BLOCK_N: 8, BLOCK_W: 128"}}
    assert record["reversed"] is True


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed (CPU PyTorch)")
def test_pinned_configs_replace_autotuning_for_the_7b_shapes_on_hopper_only(monkeypatch):
    """Each pinned config exists in the kernel's list and is the only one left for its shape on Hopper; other
    shapes, and every shape on other devices, keep the whole list."""
    from runner.quant import triton_gemv

    kernel = triton_gemv._int4_gemv
    prune, every = kernel.early_config_prune, kernel.configs
    key = {"N": 12288, "words_per_row": 512}
    monkeypatch.setattr(triton_gemv, "_hopper", lambda: False)
    assert prune(every, key, GROUP=128) == every  # not Hopper
    monkeypatch.setattr(triton_gemv, "_hopper", lambda: True)
    for (n, words, group), (rows, block_w, prefetch, warps) in triton_gemv.PINNED_INT4.items():
        (left,) = prune(every, {"N": n, "words_per_row": words}, GROUP=group)
        assert (left.kwargs["BLOCK_N"], left.kwargs["BLOCK_W"], left.kwargs["PREFETCH"], left.num_warps) == (
            rows, block_w, prefetch, warps,
        )  # fmt: skip
    assert prune(every, {"N": 11008, "words_per_row": 512}, GROUP=128) == every  # unfused gate: autotuned
