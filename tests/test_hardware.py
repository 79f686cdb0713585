"""Placement on one or many devices: what the record says, and the clear errors for devices and budgets that
cannot work. Multi-GPU validation runs here against a pretend two-GPU host; loading needs the real one."""

from __future__ import annotations

import pytest
import torch

from runner.config.hardware import DeviceKind, HardwareConfig
from runner.config.load import to_run_config
from runner.devices import resolve_device
from runner.errors import ConfigError
from runner.models.build import build_random
from runner.placement import from_pretrained_options, load_budgets, placement_summary, predict_device_map
from tests.conftest import compose_config

GB = 10**9


def typed(*overrides: str):
    return to_run_config(compose_config(list(overrides)))


def config_error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as error:
        typed(*overrides)
    return str(error.value)


@pytest.fixture
def two_gpus(monkeypatch):
    """Validation as on a host with two 80 GB GPUs (nothing is loaded, so nothing touches CUDA)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: (70 * GB + index, 80 * GB))


def test_single_device_placement_is_recorded(run_job):
    record = run_job()
    assert record["status"] == "ok", record.get("error")
    placement = record["model"]["placement"]
    assert placement["device_map"] == "single device"
    assert placement["modules"] == {"": "cpu"}
    assert 0 < placement["devices"]["cpu"]["parameter_bytes"] <= record["model"]["footprint_bytes"]


def test_placement_of_a_split_model_counts_modules_and_bytes_per_device():
    model = build_random(typed("hardware=cpu").model, "eager", torch.device("cpu"))
    model.hf_device_map = {"model.embed_tokens": 0, "model.layers": 1, "model.norm": 1, "lm_head": "cpu"}
    summary = placement_summary(model, torch.device("cuda", 0))
    assert summary["device_map"] == "auto"
    assert summary["modules"]["model.embed_tokens"] == "cuda:0"
    embedding_bytes = model.model.embed_tokens.weight.nelement() * 4
    assert summary["devices"]["cuda:0"] == {"modules": 1, "parameter_bytes": embedding_bytes}
    assert summary["devices"]["cuda:1"]["modules"] == 2
    assert summary["devices"]["cpu"]["parameter_bytes"] == model.lm_head.weight.nelement() * 4
    total = sum(d["parameter_bytes"] for d in summary["devices"].values())
    assert total == sum(p.nelement() * 4 for p in model.parameters())
    model.hf_device_map["lm_head"] = "disk"
    with pytest.raises(ConfigError, match="placed 1 module.*on disk.*hardware.max_memory"):
        placement_summary(model, torch.device("cuda", 0))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only host")
@pytest.mark.parametrize("hardware", ["cuda", "multi_gpu"])
def test_gpu_options_on_a_cpu_only_host_fail_clearly(run_job, hardware):
    record = run_job(f"hardware={hardware}")
    assert record["status"] == "failed"
    assert record["error"]["type"] == "ConfigError"
    assert f"hardware={hardware} needs a CUDA GPU, but torch sees none" in record["error"]["message"]


def test_a_gpu_index_that_does_not_exist(two_gpus):
    message = config_error("hardware=cuda", "hardware.device=2")
    assert "hardware.device=2 does not exist: this host has 2 GPU(s)" in message
    message = config_error("hardware=multi_gpu", "hardware.max_memory={0:1GB,3:1GB}")
    assert "hardware.max_memory names GPU 3, but this host has 2 GPU(s)" in message


def test_budgets_too_small_fail_before_loading(two_gpus):
    # the seed's {0: 600MB, 1: 1GB} cannot hold bloom-3b even in 4-bit: its embeddings alone take 1.3 GB
    message = config_error("model=bloom-3b", "quant=4bit", "hardware=multi_gpu", "hardware.max_memory={0:600MB,1:1GB}")
    assert "hardware.max_memory={0: '600MB', 1: '1GB'} (1.60 GB in all) cannot hold model=bloom-3b" in message
    assert "with quant=4bit (about 2.47 GB)" in message
    assert "hardware.offload=true quant.llm_int8_enable_fp32_cpu_offload=true" in message
    message = config_error("model=bloom-3b", "hardware=multi_gpu", "hardware.max_memory={0:2GB,1:2GB}")
    assert "with float16 weights (about 6.01 GB)" in message


def test_budgets_that_fit_pass_and_pick_the_input_gpu(two_gpus):
    # loaded on two H100s in scripts/gpu/multi_gpu.sh (docs/benchmarks.md)
    cfg = typed(
        "model=bloom-3b", "attention=eager", "quant=8bit", "hardware=multi_gpu", "hardware.max_memory={0:3GB,1:3GB}"
    )
    assert resolve_device(cfg.hardware) == torch.device("cuda", 0)
    cfg = typed("model=bloom-3b", "attention=eager", "hardware=multi_gpu", "hardware.max_memory={1:8GB}")
    assert resolve_device(cfg.hardware) == torch.device("cuda", 1)  # inputs go where the model starts
    cfg = typed(
        "model=bloom-3b",
        "attention=eager",
        "hardware=multi_gpu",
        "hardware.max_memory={0:2GB,1:2GB,cpu:8GB}",
        "hardware.offload=true",
    )
    assert cfg.hardware.offload


def test_budgets_reach_from_pretrained(two_gpus, monkeypatch):
    monkeypatch.setattr("psutil.virtual_memory", lambda: type("Memory", (), {"available": 16 * GB}))
    every_gpu = HardwareConfig(name="multi_gpu", kind=DeviceKind.multi_gpu)
    assert from_pretrained_options(every_gpu) == {"device_map": "auto", "max_memory": {0: 70 * GB, 1: 70 * GB + 1}}
    named = HardwareConfig(name="multi_gpu", kind=DeviceKind.multi_gpu, max_memory={1: "1GB"}, offload=True)
    assert load_budgets(named) == {1: GB, "cpu": 16 * GB}  # only GPU 1; the CPU only because offload allows it
    assert from_pretrained_options(HardwareConfig(name="cuda", kind=DeviceKind.cuda)) == {}


def test_bad_budgets_say_how_to_write_them(two_gpus):
    assert "hardware.max_memory.0='lots' is not a size: write 600MB" in config_error(
        "hardware=multi_gpu", "hardware.max_memory={0:lots}"
    )
    assert "key 'gpu0' is not a device" in config_error("hardware=multi_gpu", "hardware.max_memory={gpu0:1GB}")
    assert "set hardware.offload=true, or drop the cpu entry" in config_error(
        "hardware=multi_gpu", "hardware.max_memory={0:1GB,cpu:1GB}"
    )


def test_multi_gpu_options_need_multi_gpu():
    message = config_error("hardware=cpu", "hardware.offload=true")
    assert "hardware.offload splits a model over devices, which hardware=cpu does not do: use hardware=multi_gpu" in (
        message
    )
    assert "hardware.max_memory" in config_error("hardware=cpu", "hardware.max_memory={0:1GB}")


def test_offloaded_quantized_modules_must_stay_fp32(two_gpus):
    message = config_error("quant=8bit", "hardware=multi_gpu", "hardware.offload=true")
    assert "Set quant.llm_int8_enable_fp32_cpu_offload=true" in message
    typed("quant=8bit", "hardware=multi_gpu", "hardware.offload=true", "quant.llm_int8_enable_fp32_cpu_offload=true")


def _device_of(module: str, device_map: dict) -> str:
    """The device a device map gives `module`: that of its longest listed prefix."""
    owners = [key for key in device_map if key in ("", module) or module.startswith(key + ".")]
    if not owners:  # the map lists only submodules of `module`: they must agree
        owners = [key for key in device_map if key.startswith(module + ".")]
        assert len({device_map[k] for k in owners}) == 1, (module, device_map)
    return f"cuda:{device_map[max(owners, key=len)]}"


@pytest.mark.gpu
def test_multi_gpu_split_on_two_gpus(run_job):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    # tiny-llama is 0.8 MB in float32. 600 kB on GPU 0 forces a split: the embeddings there, the rest on GPU 1.
    # (300 kB did not: accelerate keeps room for the largest layer, so all of it went to GPU 1.)
    budgets = "hardware.max_memory={0:600KB,1:1GB}"
    predicted = predict_device_map(typed("hardware=multi_gpu", budgets).model, typed().quant, {0: 600_000, 1: 10**9})
    record = run_job("hardware=multi_gpu", budgets)
    assert record["status"] == "ok", record.get("error")
    placement = record["model"]["placement"]
    assert set(placement["devices"]) == {"cuda:0", "cuda:1"}
    # as the check foresaw (either map may name a submodule where the other names its parent)
    assert all(_device_of(name, predicted) == where for name, where in placement["modules"].items()), placement
    assert record["agreement"]["agrees"], record["agreement"]


def test_budgets_predicted_as_transformers_balances_them(two_gpus):
    """4-bit bloom-3b in {0: 2GB, 1: 2GB}: transformers refused it on two H100s ("Some modules are dispatched on
    the CPU or the disk") after balancing the budgets; the check must say so before loading."""
    with pytest.raises(ConfigError, match="cannot hold model=bloom-3b with quant=4bit"):
        typed(
            "model=bloom-3b", "attention=eager", "quant=4bit", "hardware=multi_gpu", "hardware.max_memory={0:2GB,1:2GB}"
        )


def test_offload_lets_the_cpu_take_the_rest(two_gpus):
    """fp16 bloom-3b (6 GB) in 2 GB + 2 GB with offload=true: the CPU holds the rest, so it is not refused."""
    cfg = typed(
        "model=bloom-3b",
        "attention=eager",
        "hardware=multi_gpu",
        "hardware.max_memory={0:2GB,1:2GB}",
        "hardware.offload=true",
    )
    assert cfg.hardware.offload


def test_tied_weights_are_counted_once_in_the_placement():
    """bloom ties its embeddings to lm_head: split over two devices, the per-device bytes must add up to the
    model's parameter bytes, not count the shared matrix on both (seen on 2 H100s: 1225 MiB too many)."""
    model = torch.nn.Module()
    model.embed = torch.nn.Embedding(100, 8)
    model.head = torch.nn.Linear(8, 100, bias=False)
    model.head.weight = model.embed.weight  # tied
    model.hf_device_map = {"embed": 0, "head": 1}
    summary = placement_summary(model, torch.device("cpu"))
    total = sum(d["parameter_bytes"] for d in summary["devices"].values())
    assert total == 100 * 8 * 4
    assert summary["devices"]["cuda:0"]["parameter_bytes"] == 100 * 8 * 4  # where the shared matrix first sits
    assert summary["devices"]["cuda:1"]["parameter_bytes"] == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a host without GPUs refuses")
@pytest.mark.parametrize(
    "overrides",
    [
        ("hardware=cuda", "convert.compile=true", "scenario=generate"),
        ("hardware=cuda", "attention=sdpa_flash", "model.dtype=bfloat16"),
        ("hardware=cuda", "backend=onnxruntime"),
        ("hardware=cuda", "quant=4bit"),
    ],
)
def test_a_missing_gpu_is_said_once_whatever_else_needs_it(overrides):
    message = config_error(*overrides)
    assert message.count("torch sees none") == 1, message
    assert "hardware=cuda needs a CUDA GPU" in message
