"""Bad input fails before anything loads, names the bad input and the valid choices, and exits non-zero."""

from __future__ import annotations

import importlib.util
import logging

import pytest
import torch

from runner.library_noise import NOISE, quiet_library_noise


def test_bad_group_option_names_the_choices(cli):
    result = cli("quant=4bitt")
    assert result.returncode != 0
    assert "Could not find 'quant/4bitt'" in result.stderr
    assert "none" in result.stderr  # the valid options are listed
    assert "Traceback" not in result.stderr


def test_bad_key_names_the_valid_keys(cli):
    result = cli("model.dtyp=bf16")
    assert result.returncode == 2
    assert "unknown key 'model.dtyp'" in result.stderr
    assert "Did you mean 'model.dtype'?" in result.stderr
    assert "Valid keys of model:" in result.stderr and "dtype" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_value_names_the_valid_values(cli):
    result = cli("model.dtype=bf16")
    assert result.returncode != 0
    assert "expected one of [float32, float16, bfloat16]" in result.stderr


def test_bad_bool_is_one_line_naming_the_key(cli):
    result = cli("convert.fuse_projections=maybe")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: Error merging override convert.fuse_projections=maybe: Value 'maybe' is not a valid bool (type str)"
    ]


def test_gpu_option_on_a_cpu_host_fails_clearly(cli, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a CPU host, on a GPU host too
    result = cli("hardware=cuda")
    assert result.returncode == 2
    assert "hardware=cuda needs a CUDA GPU" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_numbers_fail_validation(run_job):
    record = run_job("scenario.padding_ratio=1.0", "scenario.batch_size=0")
    assert record["status"] == "failed"
    assert "scenario.padding_ratio=1.0 must be in [0, 1)" in record["error"]["message"]
    assert "scenario.batch_size=0 must be at least 1" in record["error"]["message"]


def test_unknown_stage_suggests_the_closest(run_job):
    record = run_job("pipeline.stages=[load,infr]")
    assert record["status"] == "failed"
    assert "unknown stage 'infr'. Did you mean 'infer'?" in record["error"]["message"]


def test_pretrained_without_a_checkpoint_fails_with_the_fix(run_job, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    record = run_job("model=tiny-llama", "model.weights=pretrained", "model.hub_id=nobody/nothing")
    assert record["status"] == "failed"
    assert "model.weights=random" in record["error"]["message"]


@pytest.mark.skipif(
    importlib.util.find_spec("torchao") is None or torch.version.cuda is not None,
    reason="the noise comes from torchao's CUDA-only extensions on a CPU build of torch",
)
def test_an_error_is_the_first_thing_a_user_reads(cli):
    """torchao 0.18 logs 'Failed to load .../_C_mxfp8...so' at import on a CPU build of torch, and torch 2.13 a
    deprecation about torchao's Enum: lines before every run's own output that the user cannot act on."""
    result = cli("scenario.batch_size=0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: scenario.batch_size=0 must be at least 1"]


def test_library_noise_filters_drop_only_the_noise():
    quiet_library_noise()
    quiet_library_noise()  # a second call adds no second filter
    torchao = logging.getLogger("torchao")
    assert len(torchao.filters) == 1

    def shown(logger, message):
        return logger.filter(logging.LogRecord(logger.name, logging.WARNING, __file__, 1, message, None, None))

    cuda_only = "Failed to load /site-packages/torchao/_C_mxfp8.so: Could not load this library"
    assert bool(shown(torchao, cuda_only)) == (torch.version.cuda is not None)  # shown where CUDA could load it
    assert shown(torchao, "Failed to load something else")
    assert shown(torchao, "int4 weight-only needs bfloat16")
    pytree = logging.getLogger("torch.utils._pytree")
    assert not shown(
        pytree, "<enum 'KernelPreference'> is an Enum subclass and is now natively supported by torch.compile"
    )
    assert shown(pytree, "another pytree warning")
    assert set(NOISE) == {"torchao", "torch.utils._pytree"}
