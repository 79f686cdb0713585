"""The roofline: FLOPs and bytes of known architectures, the GPU table, and the section in every record."""

from __future__ import annotations

import pytest
import torch

from runner.config.load import to_run_config
from runner.models.build import build_model
from runner.models.source import resolve_weights
from runner.roofline.cost import Shape, decode_bytes_per_step, forward_flops
from runner.roofline.gpus import ceilings_for
from tests.conftest import COMPILED_ON_GPU, compose_config


def _meta_model(preset: str):
    model = to_run_config(compose_config([f"model={preset}", "model.weights=random", "hardware=cpu"])).model
    with torch.device("meta"):
        return build_model(model, resolve_weights(model), "eager", torch.device("meta"))


def test_llama_7b_forward_flops_match_the_hand_count():
    shape = Shape.of(_meta_model("llama"), causal=True)
    # 32 layers x (4 x 4096^2 attention + 3 x 4096 x 11008 MLP) + 4096 x 32000 lm head
    assert shape.linear_macs_per_token == 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 4096 * 32000
    flops = forward_flops(shape, batch=1, seq=4096)
    attention = 2 * 2 * 32 * 4096 * 4096 * 4096 / 2
    assert flops == pytest.approx(2 * shape.linear_macs_per_token * 4096 + attention)
    assert 5.5e13 < flops < 6.0e13  # ~2 x 6.6 G MACs x 4096 tokens + causal attention


def test_falcon_has_one_kv_head_in_its_cache():
    shape = Shape.of(_meta_model("falcon"), causal=True)
    assert shape.kv_width == 64  # multi-query: one head of 64
    bytes_ = decode_bytes_per_step(weight_bytes=0, shape=shape, batch=1, context=1000, dtype_bytes=2)
    assert bytes_ == 2 * 32 * 64 * 1000 * 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
    ],
)
def test_gpu_table(name, expected):
    assert ceilings_for(name).name == expected
    assert ceilings_for("Some Unknown Card") is None


def test_every_run_has_a_roofline_section(run_job):
    record = run_job("roofline.peak_tflops=1.0", "roofline.bandwidth_gbs=10")
    section = record["roofline"]
    assert section["ceilings"] == {
        "peak_tflops": 1.0,
        "bandwidth_gbs": 10.0,
        "gpus": 1,
        "per_gpu": {"peak_tflops": 1.0, "bandwidth_gbs": 10.0},
        "source": "override",
    }
    forward = section["forward"]
    latency = record["measurements"]["forward"]["latency"]["mean"]
    assert forward["achieved_tflops"] == pytest.approx(forward["flops"] / latency / 1e12)
    assert forward["share_of_peak"] == pytest.approx(forward["achieved_tflops"] / 1.0)


def test_generate_roofline_reports_decode_bandwidth(run_job):
    record = run_job("scenario=generate", "scenario.new_tokens=4", "scenario.sequence_length=8")
    decode = record["roofline"]["decode"]
    assert decode["bytes_per_token_step"] > record["model"]["footprint_bytes"]
    per_token = record["measurements"]["generate"]["per_token"]["mean"]
    assert decode["achieved_gbs"] == pytest.approx(decode["bytes_per_token_step"] / per_token / 1e9)
    assert decode["share_of_bandwidth"] is None  # a CPU: no ceiling known, none invented


def test_compile_needs_generate_on_a_gpu(run_job):
    record = run_job("convert.compile=true")
    assert record["status"] == "failed"
    assert "use scenario=generate" in record["error"]["message"]
    if not torch.cuda.is_available():
        record = run_job("convert.compile=true", "scenario=generate")
        assert "needs a GPU" in record["error"]["message"]


@pytest.mark.gpu
def test_compiled_static_cache_decode_is_recorded(run_job):
    record = run_job(*COMPILED_ON_GPU, "scenario.new_tokens=16", fast=False)
    assert record["status"] == "ok", record.get("error")
    assert record["measurements"]["generate"]["per_token_count_per_call"][0] == 15


def test_sweep_report_carries_the_roofline(run_job, tmp_path):
    from runner.record import Record
    from runner.report.collect import flatten

    record = run_job("roofline.peak_tflops=1.0", "roofline.bandwidth_gbs=10")
    row = flatten(Record.from_dict(record))
    assert row["forward_TFLOPs"] == pytest.approx(record["roofline"]["forward"]["achieved_tflops"])
    assert row["forward_share_of_peak"] == pytest.approx(row["forward_TFLOPs"] / 1.0)
    generate = flatten(
        Record.from_dict(run_job("scenario=generate", "scenario.new_tokens=3", "roofline.bandwidth_gbs=10"))
    )
    assert generate["decode_share_of_bandwidth"] == pytest.approx(generate["decode_GBs"] / 10)


def test_ceilings_add_up_over_the_gpus_a_run_uses():
    from types import SimpleNamespace

    from runner.config.hardware import DeviceKind, HardwareConfig
    from runner.roofline.analysis import ceilings, gpus_in_use

    split = [torch.device("cuda:0"), torch.device("cuda:1"), torch.device("cuda:1"), torch.device("cpu")]
    multi = SimpleNamespace(kind=DeviceKind.multi_gpu, tp_on_cpu=False)
    assert gpus_in_use(multi, split) == 2  # a model split over two GPUs, some layers offloaded to the CPU
    tp = HardwareConfig(kind=DeviceKind.tp, num_gpus=4)
    assert gpus_in_use(tp, [torch.device("cuda:0")]) == 4  # each rank sees its own GPU; the job uses four
    h200 = ceilings("NVIDIA H200", gpus=4)
    assert (h200["peak_tflops"], h200["bandwidth_gbs"]) == pytest.approx((4 * 989.4, 4 * 4800))
    assert h200["per_gpu"] == {"peak_tflops": 989.4, "bandwidth_gbs": 4800} and h200["gpus"] == 4
