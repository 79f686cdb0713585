"""quant=int4wo_gemlite and int8wo_gemlite: gemlite's Triton kernels through the torchao plugin's machinery. The
kernels need a CUDA GPU; on the CPU this tests what reaches transformers, the refusals and the int4 levels."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from runner.config.load import to_run_config
from runner.config.model import DType
from runner.config.quant import QuantConfig
from runner.errors import ConfigError
from runner.quant import method_of
from tests.conftest import COMPILED_ON_GPU, compose_config

pytest.importorskip("torchao")

from runner.quant.gemlite_weights import GemliteConfig, int4_levels  # noqa: E402  (needs torchao)

TINY_LLAMA_LINEARS = 14  # 2 layers x (q, k, v, o, gate, up, down); lm_head stays unquantized
WIDTHS = ("model.architecture.hidden_size=1024", "model.architecture.intermediate_size=2048")


@pytest.mark.parametrize(
    ("quant", "bits", "group_size", "hqq"),
    [
        (["quant=int4wo_gemlite"], 4, 128, True),
        (["quant=int4wo_gemlite", "quant.group_size=64", "quant.int4_choose_qparams_algorithm=tinygemm"], 4, 64, False),
        (["quant=int8wo_gemlite"], 8, None, False),
    ],
)
def test_the_options_reach_transformers_torchao_config(quant, bits, group_size, hqq):
    # the YAML as composed, typed by the quant schema (the run's checks would refuse gemlite on the CPU)
    node = OmegaConf.merge(OmegaConf.structured(QuantConfig), compose_config(["hardware=cpu", *quant]).quant)
    config = method_of(node).quantization_config(OmegaConf.to_object(node), DType.bfloat16)
    assert type(config).__name__ == "TorchAoConfig"
    assert config.quant_type == GemliteConfig(bits=bits, group_size=group_size, hqq=hqq)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["quant=int4wo_gemlite", "model.dtype=bfloat16"], "_gemlite needs a CUDA GPU, and this run is on the CPU"),
        (["quant=int8wo_gemlite"], "model.dtype=float32: gemlite's kernels take float16 or bfloat16"),
        (["quant=int4wo_gemlite", "quant.group_size=100"], "group_size=100: quant=int4wo_gemlite takes 32, 64, 128"),
        (["quant=int4wo_gemlite", "quant.bits=3"], "quant.bits=3: gemlite's weight-only kernels here take 4 or 8"),
    ],
)
def test_what_gemlite_cannot_run_here_is_refused_before_loading(overrides, message):
    with pytest.raises(ConfigError, match=message):
        to_run_config(compose_config(["hardware=cpu", *overrides]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("hqq", [True, False])
def test_int4_levels_rebuild_the_weight_in_gemlites_convention(hqq, dtype):
    torch.manual_seed(0)
    weight = torch.randn(64, 256) * 0.02
    weight[0, :128] = 0.01  # a constant group: its range is 0, and its scale must not round to 0 in the dtype
    weight = weight.to(dtype)
    q, scale, zero = int4_levels(weight, 128, hqq)
    assert q.dtype == torch.uint8 and int(q.max()) <= 15 and q.shape == weight.shape
    assert scale.shape == zero.shape == (64, 2) and scale.dtype == zero.dtype == dtype
    # gemlite dequantizes (q - zero) * scale per group of 128 inputs, in the model's dtype
    rebuilt = ((q.reshape(64, 2, 128).to(dtype) - zero[..., None]) * scale[..., None]).reshape(64, 256).float()
    assert torch.isfinite(rebuilt).all()
    # 16 levels over a group's range: about 10 % relative error for normal weights
    assert float((rebuilt - weight.float()).norm() / weight.float().norm()) < 0.12
    assert torch.allclose(rebuilt[0, :128], weight[0, :128].float(), rtol=0.02)


def _gpu_with_gemlite():
    pytest.importorskip("gemlite")


@pytest.mark.gpu
@pytest.mark.parametrize("quant, ratio", [("int4wo_gemlite", 0.35), ("int8wo_gemlite", 0.6)])
def test_gemlite_on_the_gpu(run_job, quant, ratio):
    _gpu_with_gemlite()
    overrides = ["hardware=cuda", f"quant={quant}", *WIDTHS, "model.dtype=bfloat16", "scenario.iterations=3"]
    record = run_job(*overrides, fast=False)
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["by_scheme"] == {"UIntxBitPackedTensor": TINY_LLAMA_LINEARS}
    assert q["linear_weight_ratio"] < ratio
    assert record["agreement"]["agrees"], record["agreement"]


@pytest.mark.gpu
@pytest.mark.parametrize("quant", ["int4wo_gemlite", "int8wo_gemlite"])
def test_compiled_gemlite_decode_on_the_gpu(run_job, quant):
    _gpu_with_gemlite()
    overrides = [f"quant={quant}", *WIDTHS, "model.dtype=bfloat16", "scenario.new_tokens=8"]
    record = run_job(*COMPILED_ON_GPU, *overrides, fast=False)
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["quantization"]["by_scheme"] == {"UIntxBitPackedTensor": TINY_LLAMA_LINEARS}
    assert record["convert"]["unwrap_tensor_subclass"]["reversed"] is True
