"""bitsandbytes quantization on the CPU (bitsandbytes >= 0.49 runs 8-bit and 4-bit there): each scheme really
replaces the Linear layers, shrinks the footprint by what its bits say, and stays close to the plain model."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from runner.backends.onnxruntime.config import OnnxRuntimeBackendConfig
from runner.checks.quant import method_runs_on_the_backend
from runner.config.load import to_run_config
from runner.config.model import DType
from runner.config.quant import FourBitType, QuantConfig
from runner.errors import ConfigError
from runner.quant.methods.bnb import bnb_config
from tests.conftest import CONF, compose_config

# tiny-llama: 2 layers x (q, k, v, o, gate, up, down) Linear layers; lm_head stays unquantized by default
TINY_LLAMA_LINEARS = 14
# scheme -> (bits, layer scheme in the census, bytes per weight relative to float32)
SCHEMES = {"8bit": (8, "int8", 1 / 4), "4bit": (4, "fp4", 1 / 8), "nf4": (4, "nf4", 1 / 8)}


@pytest.mark.parametrize("quant", sorted(SCHEMES))
def test_each_scheme_quantizes_and_stays_close(run_job, quant):
    bits, scheme, ratio = SCHEMES[quant]
    record = run_job(f"quant={quant}")
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["bits"] == bits
    assert q["by_scheme"] == {scheme: TINY_LLAMA_LINEARS}
    assert q["unquantized_linear_names"] == ["lm_head"]
    # the quantized Linear weights take exactly their bits; everything else is unchanged
    assert q["linear_weight_ratio"] == pytest.approx(ratio)
    saved = q["linear_weight_bytes_unquantized"] - q["linear_weight_bytes"]
    # ... plus the quantization state (absmax, scales) that get_memory_footprint does not see
    assert q["quant_state_bytes"] > 0
    assert q["footprint_bytes"] == q["unquantized_footprint_bytes"] - saved + q["quant_state_bytes"]
    assert q["footprint_bytes"] == record["model"]["footprint_bytes"] < q["unquantized_footprint_bytes"]
    assert q["double_quant"] is (quant == "nf4")
    # quality cost against the unquantized model on the same inputs: present, nonzero, small
    agreement = record["agreement"]
    assert agreement["changes"] == [f"attention={record['config']['attention']['name']}", f"quant={quant}"]
    assert 0 < agreement["mean_abs_diff"] < 0.1
    assert agreement["top1_agreement"] >= 0.8
    assert 0 <= agreement["kl_divergence"] < 0.01
    assert agreement["tolerance_basis"] == f"{bits}-bit"
    assert agreement["agrees"], agreement


def test_eight_bit_differs_less_than_four_bit(run_job):
    eight, four = run_job("quant=8bit")["agreement"], run_job("quant=4bit")["agreement"]
    assert eight["mean_abs_diff"] < four["mean_abs_diff"]
    assert eight["kl_divergence"] < four["kl_divergence"]


def test_four_bit_options_reach_the_layers(run_job):
    record = run_job(
        "quant=4bit",
        "quant.bnb_4bit_quant_type=nf4",
        "quant.bnb_4bit_use_double_quant=true",
        "quant.bnb_4bit_compute_dtype=bfloat16",
    )
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["by_scheme"] == {"nf4": TINY_LLAMA_LINEARS}
    assert q["double_quant"] is True
    assert q["compute_dtypes"] == ["bfloat16"]
    assert q["bitsandbytes_config"]["bnb_4bit_compute_dtype"] == "bfloat16"


def test_footprint_counts_the_quantization_state(run_job):
    """fp4 keeps a float32 absmax per 64-weight block; double quantization stores it in 8 bits plus a nested state
    (its own absmax and a 256-entry code per layer, which outweighs the saving on a model this small)."""
    fp4, nf4_double = (
        run_job("quant=4bit", "pipeline=load_only")["model"]["quantization"],
        run_job("quant=nf4", "quant.bnb_4bit_use_double_quant=true", "pipeline=load_only")["model"]["quantization"],
    )
    assert fp4["linear_weight_bytes"] == nf4_double["linear_weight_bytes"]  # the packed weights are the same size
    blocks = fp4["linear_weight_bytes"] * 2 // 64  # two 4-bit weights a byte, 64 weights a block
    assert fp4["quant_state_bytes"] >= blocks * 4  # a float32 absmax per block
    assert nf4_double["quant_state_bytes"] >= blocks + TINY_LLAMA_LINEARS * 256 * 4  # 8-bit absmax + nested codes
    assert nf4_double["footprint_bytes"] - fp4["footprint_bytes"] == (
        nf4_double["quant_state_bytes"] - fp4["quant_state_bytes"]
    )


def test_eight_bit_options_reach_transformers(run_job):
    record = run_job("quant=8bit", "quant.llm_int8_threshold=4.0", "quant.llm_int8_skip_modules=[lm_head,down_proj]")
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["by_scheme"] == {"int8": TINY_LLAMA_LINEARS - 2}  # both layers' down_proj skipped
    assert sorted(q["unquantized_linear_names"]) == [
        "lm_head",
        "model.layers.0.mlp.down_proj",
        "model.layers.1.mlp.down_proj",
    ]
    assert q["bitsandbytes_config"]["llm_int8_threshold"] == 4.0


def test_compute_dtype_defaults_to_the_model_dtype():
    quant = QuantConfig(name="4bit", method="bitsandbytes", bits=4, bnb_4bit_quant_type=FourBitType.nf4)
    config = bnb_config(quant, DType.float16)
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_compute_dtype == torch.float16
    assert config.bnb_4bit_quant_type == "nf4"
    assert bnb_config(QuantConfig(), DType.float16) is None


def test_quantizing_nothing_fails(run_job):
    # an explicit skip list replaces the default one, so this skips every Linear layer
    record = run_job("quant=8bit", "quant.llm_int8_skip_modules=[model,lm_head]")
    assert record["status"] == "failed"
    assert record["error"]["type"] == "OptimizationNotApplied"
    assert "asked for 8-bit bitsandbytes layers" in record["error"]["message"]
    assert "llm_int8_skip_modules" in record["error"]["message"]


def test_falcon_linear_layers_are_quantized(run_job):
    # Falcon's FalconLinear subclasses nn.Linear, which transformers 5 would leave unquantized
    record = run_job("model=tiny-falcon", "quant=4bit")
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    assert q["by_scheme"] == {"fp4": 2 * 4}  # query_key_value, dense, dense_h_to_4h, dense_4h_to_h per layer
    assert q["loaded_as_nn_linear"].endswith("FalconLinear")
    assert record["agreement"]["agrees"], record["agreement"]


def test_generate_with_a_quantized_model(run_job):
    record = run_job("quant=nf4", "scenario=generate", "scenario.new_tokens=4", "scenario.sequence_length=16")
    assert record["status"] == "ok", record.get("error")
    assert record["measurements"]["generate"]["throughput"]["tokens_per_s"]["value"] > 0
    assert record["model"]["quantization"]["by_scheme"] == {"nf4": TINY_LLAMA_LINEARS}


@pytest.mark.slow
@pytest.mark.parametrize("quant", ["8bit", "nf4"])
def test_minilm_embeddings_stay_close(run_job, quant):
    record = run_job("model=minilm", f"quant={quant}", "scenario.sequence_length=32")
    assert record["status"] == "ok", record.get("error")
    q = record["model"]["quantization"]
    # q, k, v, attention output, intermediate, output per layer, and the pooler
    assert q["quantized_linear_layers"] == 6 * 6 + 1
    assert q["footprint_ratio"] < 0.7
    agreement = record["agreement"]
    assert agreement["cosine_similarity_mean"] > (0.99 if quant == "8bit" else 0.9)
    assert agreement["agrees"], agreement


ATTENTION_OPTIONS = sorted(p.stem for p in (CONF / "attention").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("attention", ATTENTION_OPTIONS)
def test_every_attention_option_combines_with_4bit(run_job, attention):
    overrides = [f"attention={attention}", "quant=nf4"]
    try:
        to_run_config(compose_config(["hardware=cpu", *overrides]))
    except ConfigError as e:  # options this CPU cannot run say so at validation; quantization is not the reason
        assert "quant" not in str(e), str(e)
        pytest.skip(f"attention={attention} cannot run here: {e}")
    record = run_job(*overrides)
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["quantization"]["by_scheme"] == {"nf4": TINY_LLAMA_LINEARS}


@pytest.mark.slow
def test_design_example_on_the_cpu(cli, tmp_path):
    # `python -m runner model=falcon quant=4bit` with the tiny Falcon: a 7B model is the GPU script's job
    result = cli("model=tiny-falcon", "quant=4bit", "hardware=cpu", "scenario.iterations=2", "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["model"]["quantization"]["by_scheme"] == {"fp4": 8}
    assert record["model"]["quantization"]["footprint_ratio"] < 0.6


def test_design_example_validates():
    # `python -m runner model=falcon quant=4bit`: a 7B model runs on the GPU host (scripts/gpu/quant.sh)
    cfg = to_run_config(compose_config(["model=falcon", "quant=4bit", "hardware=cpu"]))
    assert (cfg.model.model_type, cfg.quant.bits) == ("falcon", 4)


def test_quantization_on_another_backend_fails_at_validation():
    message = "quant=4bit is 4-bit bitsandbytes quantization.*backend=onnxruntime cannot run it. Use backend=pytorch"
    cfg = to_run_config(compose_config(["quant=4bit", "hardware=cpu"]))
    with pytest.raises(ConfigError, match=message):  # asked of what the backend declares, not of its name
        method_runs_on_the_backend(dataclasses.replace(cfg, backend=OnnxRuntimeBackendConfig()))
    if (CONF / "backend" / "onnxruntime.yaml").exists():  # the whole path, once that backend is configured
        with pytest.raises(ConfigError, match=message):
            to_run_config(compose_config(["quant=4bit", "backend=onnxruntime", "hardware=cpu"]))


def test_unknown_bits_and_typos_fail_before_loading():
    with pytest.raises(ConfigError, match="quant.bits=3 is not a bitsandbytes scheme"):
        to_run_config(compose_config(["quant=4bit", "quant.bits=3", "hardware=cpu"]))
    with pytest.raises(Exception, match="bnb_4bit_quant_typ"):
        compose_config(["quant=4bit", "quant.bnb_4bit_quant_typ=nf4"])
    with pytest.raises(Exception, match="quant.bnb_4bit_quant_type=int3") as error:
        compose_config(["quant=4bit", "quant.bnb_4bit_quant_type=int3"])
    assert "expected one of [nf4, fp4]" in str(error.value.__cause__)


def test_four_bit_on_the_cpu_needs_rows_in_blocks_of_64():
    overrides = ["quant=4bit", "hardware=cpu", "model.architecture.intermediate_size=100"]
    with pytest.raises(ConfigError, match=r"divisible by 64.*down_proj \(100\).*quant=8bit"):
        to_run_config(compose_config(overrides))


@pytest.mark.gpu
@pytest.mark.parametrize("quant", ["8bit", "4bit"])
def test_quantized_on_the_gpu(run_job, quant):
    pytest.importorskip("bitsandbytes")  # a GPU host may lack it (the H200's small wheel kit does); CI has it
    record = run_job("hardware=cuda", f"quant={quant}", "model.dtype=float16", "scenario.iterations=3", fast=False)
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["quantization"]["quantized_linear_layers"] == TINY_LLAMA_LINEARS
    assert record["model"]["placement"]["devices"].keys() == {"cuda:0"}


def test_bettertransformer_reverses_on_a_quantized_model(run_job):
    """The seed's closing combination: 4-bit + BetterTransformer, reversed before saving."""
    record = run_job("quant=4bit", "attention=eager", "convert.bettertransformer=true", "compare.enabled=false")
    assert record["status"] == "ok", record.get("error")
    assert record["convert"]["bettertransformer"]["reversed"]["state_dict_restored"] is True
