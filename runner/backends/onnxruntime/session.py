"""An ONNX Runtime session on the providers a run asked for, and nothing else.

ONNX Runtime quietly runs on the CPU when a listed provider cannot start (its library or CUDA, cuDNN or
TensorRT is missing), and retries a failed session on the CPU. Here fallback is switched off, and the
providers the session really uses are compared with the ones asked for: a missing one fails the run with
the loader's reason."""

from __future__ import annotations

import collections
import contextlib
import io
import time
from pathlib import Path
from typing import Any

import torch

from runner.backends.onnxruntime.config import GraphOptimization, OnnxRuntimeBackendConfig, Provider
from runner.backends.onnxruntime.graph import GRAPH_FILE, Graph
from runner.backends.onnxruntime.providers import GPU_PROVIDERS, ORT_NAMES, load_failure
from runner.config.run import RunConfig
from runner.config.scenario import ScenarioConfig
from runner.errors import RunnerError

RECORD_ASSIGNMENT = "session.record_ep_graph_assignment_info"  # ORT >= 1.23: which provider runs which node


class ProviderError(RunnerError):
    """A provider that was asked for is not running the model."""


def session_options(backend: OnnxRuntimeBackendConfig, threads: int | None):
    import onnxruntime as ort

    levels = {
        GraphOptimization.disable: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        GraphOptimization.basic: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        GraphOptimization.extended: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        GraphOptimization.all: ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[backend.graph_optimization]
    if threads:  # the same CPU threads as PyTorch gets (hardware.threads), unless set below
        options.intra_op_num_threads = threads
    for name, value in backend.session_options.items():
        setattr(options, name, value)
    options.add_session_config_entry(RECORD_ASSIGNMENT, "1")
    for key, value in backend.session_config.items():
        options.add_session_config_entry(key, str(value))
    return options


def tensorrt_profile(graph: Graph, scenario: ScenarioConfig) -> dict[str, str]:
    """The range of every input's shape over the run, prefill to last decode step, so that TensorRT builds its
    engine once instead of again for every new KV-cache length (min, opt, max)."""
    batch, prompt = scenario.batch_size, scenario.sequence_length
    longest = prompt + (scenario.new_tokens if scenario.name == "generate" else 0)
    ranges = {
        "batch": (batch, batch, batch),
        "sequence": (1, prompt, prompt),
        "past_sequence": (0, prompt, longest),
        "total_sequence": (1, prompt, longest),
        "kept": (1, 1, prompt),
    }

    def shapes(which: int) -> str:
        dims = {
            name: [ranges[d][which] if isinstance(d, str) else d for d in shape] for name, shape in graph.inputs.items()
        }
        return ",".join(f"{name}:{'x'.join(map(str, d))}" for name, d in dims.items())

    return {f"trt_profile_{kind}_shapes": shapes(i) for i, kind in enumerate(("min", "opt", "max"))}


def provider_options(
    provider: Provider, cfg: RunConfig, graph: Graph, device: torch.device, folder: Path, stream: int | None = None
) -> dict:
    """Defaults that make each provider run on the run's GPU, on `stream` (a CUDA stream handle: the one torch's
    events are recorded on), and keep its state in the graph's cache folder; `backend.provider_options.<provider>`
    overrides them."""
    options: dict[str, Any] = {}
    if provider in GPU_PROVIDERS:
        options["device_id"] = device.index or 0
        if stream:  # ORT takes 0 (torch's legacy default stream) for "none given" and makes its own
            options["user_compute_stream"] = str(stream)
    if provider == Provider.cuda:
        # ORT's CUDA provider computes float32 matmuls in TF32 by default, PyTorch does not: off, so both backends
        # do the same arithmetic (seen on an H100: minilm differed by 3e-4 relative with TF32 on)
        options["use_tf32"] = 0
    if provider == Provider.tensorrt:
        # building an engine takes minutes: keep it beside the graph, where the next run finds it
        options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(folder / "tensorrt")}
        options |= {"trt_fp16_enable": graph.dtype == "float16"} | tensorrt_profile(graph, cfg.scenario)
    return options | dict(cfg.backend.provider_options.get(provider.value, {}))


def _preload_gpu_libraries() -> str:
    """Load CUDA and cuDNN from the nvidia-* wheels (torch's), as ONNX Runtime recommends; returns what it said."""
    import onnxruntime as ort

    said = io.StringIO()
    if hasattr(ort, "preload_dlls"):
        try:
            with contextlib.redirect_stdout(said):
                ort.preload_dlls()
        except Exception as error:  # the session check below reports a provider that did not start
            said.write(f"{type(error).__name__}: {error}")
    return said.getvalue().strip()


def _nodes_per_provider(session, first: str) -> dict[str, Any] | None:
    """Nodes per provider, and the op types of those that did not land on the first provider."""
    if not hasattr(session, "get_provider_graph_assignment_info"):
        return None
    try:
        assigned = session.get_provider_graph_assignment_info()
    except Exception:  # recording not supported by this build
        return None
    counts: collections.Counter = collections.Counter()
    ops: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for subgraph in assigned:
        for node in subgraph.get_nodes():
            counts[subgraph.ep_name] += 1
            ops[subgraph.ep_name][node.op_type] += 1
    elsewhere = {ep: dict(c.most_common(12)) for ep, c in ops.items() if ep != first}
    return {"nodes": dict(counts), "not_on_first_provider": elsewhere}  # op type -> nodes, by provider


def open_session(
    folder: Path,
    graph: Graph,
    cfg: RunConfig,
    device: torch.device,
    providers: list[Provider],
    stream: int | None = None,
):
    """The session and its record section; raises ProviderError unless every provider asked for is in use."""
    import onnxruntime as ort

    backend = cfg.backend
    gpu = [p for p in providers if p in GPU_PROVIDERS]
    preload = _preload_gpu_libraries() if gpu else ""
    listed = [(ORT_NAMES[p], provider_options(p, cfg, graph, device, folder, stream)) for p in providers]
    wanted = ", ".join(ORT_NAMES[p] for p in providers)
    start = time.perf_counter()
    try:
        options = session_options(backend, cfg.hardware.threads)
        session = ort.InferenceSession(str(folder / GRAPH_FILE), options, providers=listed, enable_fallback=0)
    except Exception as e:  # ORT raises its own exception types (Fail, InvalidGraph, EPFail, ...)
        libraries = "".join(f"; {ORT_NAMES[p]}: {load_failure(p)}" for p in gpu)
        raise ProviderError(
            f"ONNX Runtime could not open the model on {wanted}: {type(e).__name__}: {e}{libraries}"
        ) from e
    load_time = time.perf_counter() - start
    session.disable_fallback()  # a provider that fails while running must fail the run, not retry on the CPU
    used = session.get_providers()
    missing = [p for p in providers if ORT_NAMES[p] not in used]
    if missing:
        reasons = "; ".join(f"{ORT_NAMES[p]}: {load_failure(p)}" for p in missing)
        hint = f" (preloading CUDA libraries said: {preload})" if preload else ""
        raise ProviderError(
            f"backend.provider asked for {wanted}, but ONNX Runtime runs this model on {', '.join(used)} only. "
            f"{reasons}{hint}"
        )
    return session, {
        "providers": used,
        # what the run set (ORT's defaults cover the rest); the stream handle differs every run: said in words
        "provider_options": {name: {k: v for k, v in o.items() if k != "user_compute_stream"} for name, o in listed},
        "compute_stream": "torch's (shared with the clock's events)" if stream and gpu else "ONNX Runtime's own",
        "assignment": _nodes_per_provider(session, ORT_NAMES[providers[0]]),
        "session_load_time_s": load_time,
        "graph_optimization": backend.graph_optimization.value,
    }
