"""backend=onnxruntime on the CPU provider: export and its cache, forward, classification and embeddings,
generation with the exported KV cache, parity with PyTorch, and the provider errors that replace ONNX
Runtime's silent fallback to the CPU."""

from __future__ import annotations

import json
import time
from pathlib import Path

import onnxruntime
import pytest
import torch

from runner.backends.onnxruntime import export as onnx_export
from runner.backends.onnxruntime.config import Provider
from runner.backends.onnxruntime.graph import GRAPH_FILE, META_FILE, Graph
from runner.backends.onnxruntime.providers import installed_packages
from runner.backends.onnxruntime.session import ProviderError, open_session, tensorrt_profile
from runner.config.load import to_run_config
from runner.context import RunContext
from runner.errors import ConfigError
from runner.models.source import resolve_weights
from runner.pipeline import run_pipeline
from runner.record import Record
from tests.conftest import compose_config

ORT = ["backend=onnxruntime"]
SMALL = ["scenario.sequence_length=16", "scenario.batch_size=2"]
TEXT = "scenario.text='Both the music and visual were astounding, not to mention the actors performance.'"


def typed(*overrides: str):
    return to_run_config(compose_config(["hardware=cpu", *overrides]))


def loaded(tmp_path: Path, *overrides: str) -> RunContext:
    """A context after load and convert: the backend's model ready, inputs built, nothing measured."""
    cfg = typed(*overrides)
    cfg.pipeline.stages = ["load", "convert"]
    ctx = RunContext(cfg=cfg, run_dir=tmp_path, device=torch.device("cpu"))
    return run_pipeline(ctx)


def test_backend_resolves_to_the_cpu_provider_on_the_cpu():
    cfg = typed(*ORT)
    assert cfg.backend.name == "onnxruntime" and cfg.backend.provider == Provider.auto
    assert cfg.backend.exporter.value == "torchscript" and cfg.backend.opset == 17


def test_tiny_bert_forward_exports_once_and_agrees_with_pytorch(run_job):
    first = run_job(*ORT, "model=tiny-bert", *SMALL, "scenario.padding_ratio=0.25")
    assert first["status"] == "ok", first.get("error")
    onnx = first["convert"]["onnx"]
    assert onnx["cache"] == "exported" and Path(onnx["path"]).is_file()
    assert onnx["providers"] == ["CPUExecutionProvider"]
    assert onnx["exporter"] == "torchscript" and onnx["opset"] == 17 and not onnx["with_kv_cache"]
    # the session is the measured model: the load stage records its graph's size, parameters and load time in
    # `model`, as for a PyTorch model (the figures records had before the typed record)
    model = first["model"]
    assert model["footprint_bytes"] == onnx["bytes"] == Record.from_dict(first).footprint_bytes() > 0
    assert model["load_time_s"] == onnx["session_load_time_s"] > 0
    assert model["parameters"] == onnx["parameters"] > 0
    assert first["measurements"]["forward"]["latency"]["count"] == 3
    agreement = first["agreement"]
    assert agreement["agrees"] and "backend=onnxruntime" in agreement["changes"]
    assert agreement["relative_max_diff"] < 1e-5 and agreement["cosine_similarity_min"] > 0.9999

    second = run_job(*ORT, "model=tiny-bert", *SMALL)
    assert second["status"] == "ok", second.get("error")
    assert second["convert"]["onnx"]["cache"] == "reused"
    assert second["convert"]["onnx"]["path"] == onnx["path"]
    assert second["convert"]["onnx"]["export_time_s"] == onnx["export_time_s"]  # from graph.json, not a new export


def test_cache_key_follows_what_shapes_the_graph(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path))
    base = typed(*ORT, "model=tiny-bert")
    folder = onnx_export.cache_folder(base, resolve_weights(base.model))
    assert folder.parent == tmp_path / "onnx" and folder.name.startswith("tiny-bert-float32-")
    assert onnx_export.cache_folder(typed(*ORT, "model=tiny-bert"), resolve_weights(base.model)) == folder
    for change in ("backend.opset=16", "model.dtype=float16", "attention=eager", "model.seed=1"):
        other = typed(*ORT, "model=tiny-bert", change)
        assert onnx_export.cache_folder(other, resolve_weights(other.model)) != folder, change


def test_tiny_llama_forward_and_generate_with_the_exported_kv_cache(run_job):
    forward = run_job(*ORT, "model=tiny-llama", *SMALL, "scenario.padding_ratio=0.25", "scenario.padding_side=left")
    assert forward["status"] == "ok", forward.get("error")
    assert forward["convert"]["onnx"]["with_kv_cache"]
    assert forward["agreement"]["agrees"] and forward["agreement"]["top1_agreement"] == 1.0

    generate = run_job(*ORT, "model=tiny-llama", "scenario=generate", *SMALL, "scenario.new_tokens=6")
    assert generate["status"] == "ok", generate.get("error")
    assert generate["convert"]["onnx"]["cache"] == "reused"  # forward and generate share one graph
    measured = generate["measurements"]["generate"]
    assert measured["per_token_count_per_call"] == [5, 5, 5]
    assert measured["prefill"]["mean"] > 0 and measured["decode"]["mean"] > 0


@pytest.mark.parametrize(
    ("model", "padding"),
    [("tiny-llama", "left"), ("tiny-llama", "right"), ("tiny-falcon", "left"), ("tiny-falcon", "right")],
)
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_greedy_tokens_match_pytorch(tmp_path, monkeypatch, model, padding, attention):
    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path / "cache"))
    overrides = [f"model={model}", f"attention={attention}", "scenario=generate", *SMALL, "scenario.padding_ratio=0.25"]
    # larger random weights make attention peaky, so that a wrong position id or mask changes the tokens
    overrides += [f"scenario.padding_side={padding}", "+model.architecture.initializer_range=0.3"]
    outputs, steps = {}, {}
    for backend in ("onnxruntime", "pytorch"):
        ctx = loaded(tmp_path / backend, f"backend={backend}", *overrides)
        calls = []
        outputs[backend] = ctx.backend.generate(ctx.inputs, 8, on_step=lambda calls=calls: calls.append(1))
        steps[backend] = len(calls)
    assert steps == {"onnxruntime": 8, "pytorch": 8}
    assert outputs["onnxruntime"].shape == (2, 16 + 8)
    assert torch.equal(outputs["onnxruntime"], outputs["pytorch"])


@pytest.mark.slow
def test_minilm_embeddings_from_text_match_pytorch(run_job):
    records = {
        b: run_job(f"backend={b}", "model=minilm", TEXT, "scenario.sequence_length=32")
        for b in ("onnxruntime", "pytorch")
    }
    for record in records.values():
        assert record["status"] == "ok", record.get("error")
    ort_run, torch_run = records["onnxruntime"], records["pytorch"]
    assert ort_run["model"]["weights"] == "pretrained"
    assert ort_run["agreement"]["agrees"] and ort_run["agreement"]["cosine_similarity_min"] > 0.9999
    predicted, expected = ort_run["predictions"], torch_run["predictions"]
    assert predicted["text"].startswith("Both the music") and predicted["embedding_shape"] == [1, 384]
    assert predicted["rows"][0]["l2_norm"] == pytest.approx(expected["rows"][0]["l2_norm"], rel=1e-4)
    assert predicted["rows"][0]["first_values"] == pytest.approx(expected["rows"][0]["first_values"], abs=1e-4)


@pytest.mark.slow
def test_classification_records_labels_like_pytorch(run_job):
    # distilbert-sst2's architecture and labels with one layer of random weights: seconds on a CPU
    model = ["model=distilbert-sst2", "model.weights=random", "model.architecture.n_layers=1", *SMALL]
    ort_run = run_job(*ORT, *model, "scenario.padding_ratio=0.25")
    torch_run = run_job("backend=pytorch", *model, "scenario.padding_ratio=0.25")
    assert ort_run["status"] == "ok", ort_run.get("error")
    assert ort_run["agreement"]["agrees"]
    rows = ort_run["predictions"]["rows"]
    assert len(rows) == 2 and {r["label"] for r in rows} <= {"NEGATIVE", "POSITIVE"}
    assert all(sum(r["scores"].values()) == pytest.approx(1.0) for r in rows)
    assert "random weights" in ort_run["predictions"]["note"]
    assert [r["label"] for r in rows] == [r["label"] for r in torch_run["predictions"]["rows"]]
    assert rows[0]["score"] == pytest.approx(torch_run["predictions"]["rows"][0]["score"], abs=1e-4)


def test_float16_distilbert_export_loads_and_agrees_with_pytorch(run_job):
    """torch's SDPA symbolic turned a boolean mask into float32, so a float16 graph had float32 activations beside
    float16 LayerNorm weights and ONNX Runtime refused to load it (runner/backends/onnxruntime/sdpa_symbolic.py)."""
    small = ["n_layers=2", "dim=64", "hidden_dim=128", "n_heads=4", "vocab_size=1024"]
    model = ["model=distilbert-sst2", "model.weights=random", *(f"model.architecture.{a}" for a in small)]
    record = run_job(*ORT, *model, "model.dtype=float16", *SMALL, "scenario.padding_ratio=0.25")
    assert record["status"] == "ok", record.get("error")
    session = onnxruntime.InferenceSession(record["convert"]["onnx"]["path"])
    assert [o.type for o in session.get_outputs()] == ["tensor(float16)"]  # float16 to the end, no float32 detour
    agreement = record["agreement"]
    assert agreement["agrees"] and agreement["tolerance_basis"] == "float16", agreement
    assert agreement["top1_agreement"] == 1.0


def test_float16_decoder_with_left_padding_has_no_nan_rows(run_job):
    """Left padding gives query rows whose every key is masked: softmax over -inf alone is NaN there, and torch's
    boolean-mask path returns 0; the float16 export must do the same, or NaN reaches the compared logits."""
    record = run_job(
        *ORT,
        "model=tiny-llama",
        "model.dtype=float16",
        *SMALL,
        "scenario.padding_ratio=0.3",
        "scenario.padding_side=left",
    )
    assert record["status"] == "ok", record.get("error")
    agreement = record["agreement"]
    assert agreement["agrees"] and agreement["tolerance_basis"] == "float16", agreement
    assert agreement["max_abs_diff"] == agreement["max_abs_diff"]  # not NaN


def test_tiny_bert_as_a_classifier_uses_default_labels(run_job):
    record = run_job(*ORT, "model=tiny-bert", "model.task=sequence_classification", *SMALL)
    assert record["status"] == "ok", record.get("error")
    assert record["agreement"]["agrees"]
    assert {r["label"] for r in record["predictions"]["rows"]} <= {"LABEL_0", "LABEL_1"}


def test_save_writes_the_onnx_graph(run_job, tmp_path):
    record = run_job(*ORT, "model=tiny-bert", *SMALL, "save.model=true")
    assert record["status"] == "ok", record.get("error")
    saved = Path(record["save"]["directory"])
    assert (saved / GRAPH_FILE).is_file() and json.loads((saved / META_FILE).read_text())["main_output"]


# --- provider errors: never a silent fallback ---------------------------------------------------------------


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_provider_on_a_cpu_only_build_fails_before_loading(provider):
    if "onnxruntime-gpu" in installed_packages():
        pytest.skip("this host has the GPU build of ONNX Runtime")
    with pytest.raises(ConfigError) as error:
        to_run_config(compose_config([*ORT, f"backend.provider={provider}"]))
    message = str(error.value)
    assert f"backend.provider={provider}" in message and "CPU-only build" in message
    assert "available providers: " in message and "CPUExecutionProvider" in message
    assert "pip install onnxruntime-gpu" in message


def test_session_without_the_provider_asked_for_fails_with_the_reason(tmp_path, monkeypatch):
    """ONNX Runtime drops a provider it cannot create, warns, and runs on the CPU; the run must fail instead."""
    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path / "cache"))
    ctx = loaded(tmp_path, *ORT, "model=tiny-bert")
    graph = Graph.load(ctx.backend.folder)
    with pytest.raises(ProviderError) as error:
        open_session(ctx.backend.folder, graph, ctx.cfg, torch.device("cpu"), [Provider.cuda])
    message = str(error.value)
    assert "asked for CUDAExecutionProvider" in message and "runs this model on CPUExecutionProvider only" in message
    assert "libonnxruntime_providers_cuda.so" in message  # the cause: the library, missing or failing to load


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["backend.provider=cpu", "hardware=cuda"], "GPU"),  # the device check names the missing GPU
        (["quant=8bit"], "quant=8bit quantizes PyTorch modules"),
        (["attention=fa2", "model.dtype=float16"], "cannot be exported to ONNX: use attention=eager"),
        (["attention=sdpa_math"], "forces PyTorch SDPA kernels"),
        (["convert.bettertransformer=true"], "drop convert.bettertransformer"),
        (["model=llama"], "add model.dtype=float16"),
        (["hardware=multi_gpu"], "use hardware=cuda"),
        (["backend.exporter=dynamo", "backend.opset=17"], "opset 18 or newer"),
        (["backend.opset=30"], "opsets 9 to 20"),
        (["+backend.session_options.intra_op_threads=2"], "not an onnxruntime.SessionOptions attribute"),
        (["+backend.provider_options.rocm={}"], "keyed by provider"),
    ],
)
def test_configurations_onnx_cannot_run_fail_at_the_door(overrides, expected):
    with pytest.raises(ConfigError) as error:
        to_run_config(compose_config([*ORT, "hardware=cpu", *overrides]))
    assert expected in str(error.value)


def test_session_is_built_at_load_so_a_pipeline_without_convert_measures_it(run_job):
    result = run_job(*ORT, "model=tiny-bert", *SMALL, "pipeline.stages=[load,warmup,infer]")
    assert result["status"] == "ok", result.get("error")
    assert result["model"]["footprint_bytes"] > 0 and "convert" not in result
    assert result["measurements"]["forward"]["latency"]["count"] == 3


def test_export_failure_fails_the_run_without_falling_back(run_job, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Unsupported: aten::something_new")

    monkeypatch.setattr(torch.onnx, "export", broken)
    record = run_job(*ORT, "model=tiny-llama", "scenario=generate")
    assert record["status"] == "failed"
    assert record["error"]["type"] == "ExportError"
    message = record["error"]["message"]
    assert "could not be exported to ONNX with its KV cache" in message and "aten::something_new" in message
    assert "does not fall back to PyTorch" in message
    assert "measurements" not in record


def test_tensorrt_profile_covers_prefill_to_the_last_decode_step():
    cfg = typed(*ORT, "model=tiny-llama", "scenario=generate", "scenario.sequence_length=16", "scenario.new_tokens=4")
    graph = Graph(
        inputs={
            "input_ids": ["batch", "sequence"],
            "attention_mask": ["batch", "total_sequence"],
            "past.0.key": ["batch", 2, "past_sequence", 16],
        },
        outputs={},
        dtype="float16",
        layers=1,
    )
    profile = tensorrt_profile(graph, cfg.scenario)
    assert profile["trt_profile_min_shapes"] == "input_ids:1x1,attention_mask:1x1,past.0.key:1x2x0x16"
    assert profile["trt_profile_max_shapes"] == "input_ids:1x16,attention_mask:1x20,past.0.key:1x2x20x16"


def test_pytorch_backend_records_predictions_too(run_job):
    record = run_job("model=tiny-bert", *SMALL)
    assert record["status"] == "ok", record.get("error")
    assert record["predictions"]["embedding_shape"] == [2, 64] and record["predictions"]["inputs"] == "random ids"


@pytest.mark.slow
def test_dynamo_exporter_generates_the_same_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path / "cache"))
    overrides = ["model=tiny-llama", "scenario=generate", *SMALL]
    ctx = loaded(tmp_path / "ort", *ORT, "backend.exporter=dynamo", "backend.opset=18", *overrides)
    reference = loaded(tmp_path / "pt", "backend=pytorch", *overrides)
    assert ctx.record.convert.onnx["exporter"] == "dynamo"
    generated = ctx.backend.generate(ctx.inputs, 6, on_step=lambda: None)
    assert torch.equal(generated, reference.backend.generate(reference.inputs, 6, on_step=lambda: None))


@pytest.mark.gpu
def test_cuda_provider_runs_on_the_gpu_and_agrees(run_job):
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed")
    record = run_job(*ORT, "hardware=cuda", "model=tiny-llama", "scenario=generate", *SMALL, fast=False)
    assert record["status"] == "ok", record.get("error")
    assert record["convert"]["onnx"]["providers"][0] == "CUDAExecutionProvider"
    assert record["agreement"]["agrees"]


def test_measured_forward_binds_once_outside_the_timed_window(tmp_path, monkeypatch):
    """Binding inputs and allocating outputs happen before the clock starts: one binding for every measured call."""
    from runner.scenarios.forward import Forward

    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path / "cache"))
    ctx = loaded(tmp_path, *ORT, "model=tiny-bert", *SMALL, "scenario.iterations=4")
    bindings = []
    bind = ctx.backend.session.bind
    monkeypatch.setattr(ctx.backend.session, "bind", lambda *a: bindings.append(1) or bind(*a))
    marks = []
    clock = ctx.backend.clock()
    mark = clock.mark
    monkeypatch.setattr(type(ctx.backend), "clock", lambda self: clock)
    monkeypatch.setattr(clock, "mark", lambda: marks.append(len(bindings)) or mark())
    forward = Forward(ctx).measure()["forward"]
    assert forward["latency"]["count"] == 4 and len(bindings) == 1
    assert marks == [1] * 8  # every start and end mark came after the one binding


def _on_cuda(tmp_path, monkeypatch, *overrides: str) -> RunContext:
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed")
    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path / "cache"))
    cfg = to_run_config(compose_config(["hardware=cuda", *ORT, *overrides]))
    cfg.pipeline.stages = ["load", "convert"]
    return run_pipeline(RunContext(cfg=cfg, run_dir=tmp_path, device=torch.device("cuda:0")))


@pytest.mark.gpu
def test_cuda_provider_decodes_on_torchs_stream_without_a_host_synchronize(tmp_path, monkeypatch):
    ctx = _on_cuda(tmp_path, monkeypatch, "model=tiny-llama", "scenario=generate", *SMALL)
    onnx = ctx.record.convert.onnx
    assert onnx["compute_stream"].startswith("torch's") and onnx["providers"][0] == "CUDAExecutionProvider"
    reference = ctx.backend.generate(ctx.inputs, 8, on_step=lambda: None)  # from torch's default stream
    synchronized = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: synchronized.append(1))
    with ctx.backend.inference_context():
        assert torch.cuda.current_stream() == ctx.backend.session.stream
        generated = ctx.backend.prepare_generate(ctx.inputs, 8)(lambda: None)
    monkeypatch.undo()
    assert synchronized == []  # eight decode steps, not one host synchronize
    assert torch.equal(generated, reference)  # the streams waited for each other: same tokens either way


@pytest.mark.gpu
def test_cuda_events_bracket_onnx_runtimes_work(tmp_path, monkeypatch):
    """Events on torch's stream see ORT's kernels: the clock agrees with a host clock read after a synchronize.
    Were ORT on a stream of its own, the end event would fire once the launches were queued, well before."""
    ctx = _on_cuda(tmp_path, monkeypatch, "model=tiny-llama", "scenario.batch_size=32", "scenario.sequence_length=512")
    clock = ctx.backend.clock()
    with ctx.backend.inference_context():
        call = ctx.backend.prepare_forward(ctx.inputs)
        call()
        ratios = []
        for _ in range(5):
            clock.synchronize()
            host_start = time.perf_counter()
            start = clock.mark()
            for _ in range(10):
                call()
            end = clock.mark()
            clock.synchronize()
            host = time.perf_counter() - host_start
            ratios.append(clock.seconds(start, end) / host)
    assert 0.8 < sorted(ratios)[2] <= 1.01
