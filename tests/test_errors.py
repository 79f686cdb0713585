"""Bad input fails before anything loads, names the bad input and the valid choices, and exits non-zero."""

from __future__ import annotations


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
