"""torchao quantization through transformers' TorchAoConfig: on the CPU, int8 and float8 weight-only really
replace the Linear weights with torchao tensors, shrink them by what their bits say and stay close to the plain
model; what torchao cannot run here is refused before loading, with the reason. CUDA kernels run on the GPU."""

from __future__ import annotations

import pytest
import torch

from runner.config.load import to_run_config
from runner.config.model import DType
from runner.config.quant import Int4Packing, Int4QParams, QuantConfig, TorchAoScheme
from runner.errors import ConfigError
from runner.quant import QUANT_METHODS, is_quantized, method_of
from tests.conftest import COMPILED_ON_GPU, compose_config

pytest.importorskip("torchao")

# tinygemm pads each weight's inputs to a multiple of 1024 (torchao's tile-packed layout): at 128/256 the packed int4
# weights took 1.89x the bf16 bytes (H200, 2026-11-29), so the widths are multiples of 1024
INT4_WIDTHS = ("model.architecture.hidden_size=1024", "model.architecture.intermediate_size=2048")
TINY_LLAMA_LINEARS = 14  # 2 layers x (q, k, v, o, gate, up, down); lm_head stays unquantized
# quant -> (torchao tensor subclass of each weight, weight bytes relative to float32 without the scales)
CPU_SCHEMES = {"int8wo": ("Int8Tensor", 1 / 4), "fp8wo": ("Float8Tensor", 1 / 4)}


@pytest.mark.parametrize("quant", sorted(CPU_SCHEMES))
def test_weight_only_schemes_quantize_on_the_cpu(run_job, quant):
    subclass, ratio = CPU_SCHEMES[quant]
    record = run_job(f"quant={quant}")
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert (q["method"], q["scheme"], q["bits"]) == ("torchao", quant, 8)
    assert q["by_scheme"] == {subclass: TINY_LLAMA_LINEARS}
    assert q["unquantized_linear_names"] == ["lm_head"]
    # one float32 scale per output row on top of the 8-bit weights: a little above a quarter
    assert ratio < q["linear_weight_ratio"] < ratio * 1.1
    saved = q["linear_weight_bytes_unquantized"] - q["linear_weight_bytes"]
    assert q["footprint_bytes"] == q["unquantized_footprint_bytes"] - saved
    # the record's footprint is the real one, not the logical float32 size a torchao tensor reports
    assert record["model"]["footprint_bytes"] == q["footprint_bytes"]
    assert q["torchao_config"]["quant_method"] == "torchao"
    agreement = record["agreement"]
    assert agreement["changes"][-1] == f"quant={quant}"
    assert agreement["top1_agreement"] >= 0.9
    assert agreement["agrees"], agreement


def test_skipped_modules_stay_unquantized(run_job):
    record = run_job("quant=int8wo", "quant.modules_to_not_convert=[lm_head,down_proj]")
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["by_scheme"] == {"Int8Tensor": TINY_LLAMA_LINEARS - 2}
    assert sorted(q["unquantized_linear_names"]) == [
        "lm_head",
        "model.layers.0.mlp.down_proj",
        "model.layers.1.mlp.down_proj",
    ]


def test_generate_with_int8_weights(run_job):
    record = run_job("quant=int8wo", "scenario=generate", "scenario.new_tokens=4", "scenario.sequence_length=16")
    assert record["status"] == "ok", record.get("error")
    assert record["measurements"]["generate"]["throughput"]["tokens_per_s"]["value"] > 0


def test_int4_options_reach_the_torchao_config():
    quant = QuantConfig(
        name="int4wo",
        method="torchao",
        bits=4,
        scheme=TorchAoScheme.int4wo,
        group_size=64,
        int4_choose_qparams_algorithm=Int4QParams.hqq,
    )
    config = method_of(quant).quantization_config(quant, DType.bfloat16)
    ao = config.quant_type
    assert type(ao).__name__ == "Int4WeightOnlyConfig"
    assert ao.group_size == 64
    assert ao.int4_packing_format.value == "tile_packed_to_4d"
    assert ao.int4_choose_qparams_algorithm.value == "hqq"
    own = QuantConfig(method="torchao", scheme=TorchAoScheme.int4wo, group_size=32, int4_packing_format="inductor")
    assert type(method_of(own).quantization_config(own, DType.float32).quant_type).__name__ == "PackedInt4Config"
    assert method_of(own).quantization_config(own, DType.float32).quant_type.group_size == 32
    fp8dq = method_of(quant).quantization_config(QuantConfig(method="torchao", scheme=TorchAoScheme.fp8dq), None)
    assert type(fp8dq.quant_type).__name__ == "Float8DynamicActivationFloat8WeightConfig"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["quant=int4wo", "model.dtype=bfloat16"],
            "int4wo needs a CUDA GPU, and this run is on the CPU: torchao 0.18 has no CPU",
        ),
        (["quant=int4wo", "model.dtype=float32"], "int4 kernels take bfloat16.*model.dtype=bfloat16"),
        (["quant=fp8dq"], "fp8dq needs a CUDA GPU, .*float8 dynamic-activation matmuls run on Hopper"),
        (["quant=int4wo", "model.dtype=bfloat16", "quant.group_size=100"], "group_size=100: int4wo takes 32, 64"),
        (
            ["quant=int4wo", "model.dtype=bfloat16", "quant.int4_packing_format=plain", "quant=int4wo"],
            "packing_format=plain runs the kernels of the `mslk` package",
        ),
        (
            ["quant=int4wo", "quant.int4_packing_format=plain", "quant.int4_choose_qparams_algorithm=hqq"],
            "hqq with quant.int4_packing_format=plain",
        ),
        (
            ["quant=int4wo", "quant.int4_packing_format=inductor", "quant.int4_choose_qparams_algorithm=hqq"],
            "hqq with quant.int4_packing_format=inductor",
        ),
        (["quant=int8wo", "quant.scheme=null"], "quant.method=torchao needs quant.scheme"),
        (["quant=int8wo", "quant.method=torchoa"], "unknown quantization method 'torchoa'. Did you mean 'torchao'"),
    ],
)
def test_what_torchao_cannot_run_here_is_refused_before_loading(overrides, message):
    with pytest.raises(ConfigError, match=message):
        to_run_config(compose_config(["hardware=cpu", *overrides]))


def test_compiling_a_bitsandbytes_model_is_refused():
    cfg = compose_config(["hardware=cpu", "quant=4bit", "convert.compile=true", "scenario=generate"])
    with pytest.raises(ConfigError, match="convert.compile=true with quant=4bit: transformers does not compile"):
        to_run_config(cfg)


def test_every_method_answers_for_itself():
    assert QUANT_METHODS.names() == ["bitsandbytes", "gemlite", "none", "torchao", "triton"]
    assert not is_quantized(QuantConfig())
    assert is_quantized(QuantConfig(method="torchao", scheme=TorchAoScheme.int8wo))
    int4 = QuantConfig(method="torchao", scheme=TorchAoScheme.int4wo, int4_packing_format=Int4Packing.plain)
    assert method_of(int4).compilable(int4) is None
    assert method_of(QuantConfig(method="bitsandbytes", bits=8)).compilable(QuantConfig()) is not None


@pytest.mark.gpu
@pytest.mark.parametrize("quant", ["int8wo", "int4wo", "fp8wo", "fp8dq"])
def test_torchao_on_the_gpu(run_job, quant):
    major, minor = torch.cuda.get_device_capability()
    if quant.startswith("fp8") and (major, minor) < ((9, 0) if quant == "fp8dq" else (8, 9)):
        pytest.skip(f"{quant} needs a newer GPU than {torch.cuda.get_device_name()}")
    # int4 (tinygemm): on the H200 only the 128-wide inputs of tiny-llama were quantized (2 of 14 layers, with
    # groups of 128 or 64), so the model is widened (INT4_WIDTHS) and every Linear layer qualifies
    group = list(INT4_WIDTHS) if quant == "int4wo" else []
    record = run_job(
        "hardware=cuda", f"quant={quant}", *group, "model.dtype=bfloat16", "scenario.iterations=3", fast=False
    )
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["quantized_linear_layers"] == TINY_LLAMA_LINEARS
    assert q["linear_weight_ratio"] < (0.35 if quant == "int4wo" else 0.6)
    assert record["agreement"]["agrees"], record["agreement"]


@pytest.mark.gpu
@pytest.mark.parametrize(
    "quant, subclass",
    [
        ("int4wo", "Int4TilePackedTo4dTensor"),
        ("int8wo", "Int8Tensor"),
        ("int4wo quant.int4_packing_format=inductor", "PackedInt4Tensor"),
    ],
)
def test_compiled_torchao_decode_on_the_gpu(run_job, quant, subclass):
    overrides = [*f"quant={quant}".split(), *INT4_WIDTHS, "model.dtype=bfloat16", "scenario.new_tokens=8"]
    record = run_job(*COMPILED_ON_GPU, *overrides, fast=False)
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["quantization"]["by_scheme"] == {subclass: TINY_LLAMA_LINEARS}
    # compiled with plain-tensor weights, and the subclass weights put back afterwards
    unwrapped = record["convert"]["unwrap_tensor_subclass"]
    assert unwrapped == {"kind": "unwrap_tensor_subclass", "layers": TINY_LLAMA_LINEARS, "reversed": True}


def _int8_tiny_llama():
    from torchao.quantization import Int8WeightOnlyConfig, quantize_
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    quantize_(model, Int8WeightOnlyConfig())
    return model


def test_compiled_torchao_models_hold_plain_tensors_and_get_their_weights_back():
    """convert.compile=true on a torchao model: the convert stage unwraps the quantized weights into plain tensors
    (each compiled call would otherwise flatten and guard every subclass weight in Python), the census still sees
    them as quantized, the forward is unchanged, and the reversal restores the same subclass tensors."""
    from types import SimpleNamespace

    from torchao.utils import TorchAOBaseTensor

    from runner.stages.convert import Convert
    from tests.test_compile_decode import with_compile

    model = _int8_tiny_llama()
    method = QUANT_METHODS.get("torchao")
    before = {name: p for name, p in model.named_parameters() if isinstance(p, TorchAOBaseTensor)}
    ids = torch.randint(0, 100, (1, 8))
    reference = model(ids).logits
    cfg = with_compile(to_run_config(compose_config(["hardware=cpu", "scenario=generate", "quant=int8wo"])))
    ready = Convert._before_compile(model, SimpleNamespace(cfg=cfg))
    assert ready.record == {"kind": "unwrap_tensor_subclass", "layers": len(before)} and len(before) == 15
    assert not [p for p in model.parameters() if isinstance(p, TorchAOBaseTensor)]  # what dynamo sees
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [method.layer_scheme(m) for m in linears] == ["Int8Tensor"] * len(before)
    assert torch.equal(model(ids).logits, reference)

    assert ready.reverse(model) == {**ready.record, "reversed": True}
    after = {name: p for name, p in model.named_parameters() if isinstance(p, TorchAOBaseTensor)}
    assert after.keys() == before.keys()
    assert all(after[name] is weight for name, weight in before.items())  # the same Parameter objects
    assert torch.equal(model(ids).logits, reference)


def test_fp8dq_weights_stay_subclasses_and_the_model_compiles(monkeypatch):
    """fp8dq weights quantize their layer's input on every call: unwrapped, dynamo cannot rebuild them inside the
    graph ("Failed to convert args/kwargs to proxy", the H200 decode of 2026-11-29), so they stay subclasses, the
    record says why, and the model compiles as one graph, close to the uncompiled model's output."""
    import torchao.float8.inference
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_
    from torchao.utils import TorchAOBaseTensor

    from runner.quant.methods.torchao import UnwrappedWeights

    monkeypatch.setattr(torchao.float8.inference, "is_MI300", lambda: True)  # torchao's GPU check, CPU kernels
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64, bias=False), torch.nn.Linear(64, 32, bias=False))
    model = model.to(torch.bfloat16).eval()
    quantize_(model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
    x = torch.randn(2, 64, dtype=torch.bfloat16)
    reference = model(x)
    ready = UnwrappedWeights(model)
    assert ready.record == {
        "kind": "tensor_subclasses_kept",
        "layers": 0,
        "kept_as_subclass": 2,
        "why_kept": UnwrappedWeights.KEPT_WHY,
    }
    assert all(isinstance(m.weight, TorchAOBaseTensor) for m in model)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)(x)  # inductor rounds the two layers' float8 math its own way
    torch.testing.assert_close(compiled, reference, atol=0.05, rtol=0.05)


@pytest.mark.parametrize(
    "overrides", [["convert.compile_options.unwrap_subclasses=false"], ["quant=none"], ["convert.compile=false"]]
)
def test_weights_stay_wrapped_unless_a_compiled_torchao_model_asks(overrides):
    from types import SimpleNamespace

    from runner.stages.convert import Convert
    from tests.test_compile_decode import with_compile

    cfg = to_run_config(compose_config(["hardware=cpu", "scenario=generate", "quant=int8wo", *overrides]))
    if "convert.compile=false" not in overrides:
        cfg = with_compile(cfg)
    assert Convert._before_compile(_int8_tiny_llama(), SimpleNamespace(cfg=cfg)) is None


def test_the_runners_int4_layout_runs_on_the_cpu_in_any_float_dtype(run_job):
    """quant.int4_packing_format=inductor: half a byte per weight plus a scale and zero per group, on the CPU and
    in float32, where torchao's int4 layouts refuse; the model stays close to the unquantized one."""
    record = run_job("quant=int4wo", "quant.int4_packing_format=inductor", *INT4_WIDTHS)
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["by_scheme"] == {"PackedInt4Tensor": TINY_LLAMA_LINEARS}
    # float32 weights: 4 bytes -> 0.5, plus a float32 scale and zero per 128 weights
    assert 0.5 / 4 < q["linear_weight_ratio"] < (0.5 + 8 / 128) / 4 * 1.01
    assert record["agreement"]["agrees"], record["agreement"]


def test_packed_int4_weights_unpack_in_order_and_compile_as_one_graph():
    from torchao.quantization import quantize_

    from runner.quant.methods.torchao import UnwrappedWeights
    from runner.quant.packed_int4 import PackedInt4Config, PackedInt4Tensor

    torch.manual_seed(0)
    weight = torch.randn(64, 256)
    packed = PackedInt4Tensor.from_hp(weight, 128)
    assert packed.packed.shape == (64, 128) and packed.shape == weight.shape and packed.dtype == torch.float32
    step = packed.scale.repeat_interleave(128, dim=1)
    assert ((packed.dequantize() - weight).abs() <= step / 2 + 1e-6).all()  # each weight on its nearest level
    model = torch.nn.Sequential(torch.nn.Linear(256, 512, bias=False), torch.nn.Linear(512, 256))
    quantize_(model, PackedInt4Config(group_size=128))
    x = torch.randn(2, 256)
    expected = model[1](x @ model[0].weight.dequantize().t())
    assert torch.allclose(model(x), expected, atol=1e-5)
    UnwrappedWeights(model)  # as convert.compile does: plain tensors in, the subclass rebuilt inside the graph
    assert torch.allclose(torch.compile(model, fullgraph=True)(x), expected, atol=1e-4)
