"""ONNX Runtime execution of a Transformers model exported with `torch.onnx.export`.

load: export to ONNX unless the cache has the graph, then open the session on the providers asked for: the
session is the measured model, so the load stage records its size, parameters and load time in `model`, as it
does a PyTorch model's. convert_record (read by the convert stage) is the export's account for `convert.onnx`.
forward and generate run with I/O binding on the run's device; on a GPU the provider computes on a torch stream
of the backend's, which its inference context makes current, so the clock's CUDA events bracket ONNX Runtime's
work as they do PyTorch's. `prepare_forward` and `prepare_generate` bind and allocate outside the timed
window."""

from __future__ import annotations

import contextlib
import gc
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, GenerationConfig

from runner.backends.base import BACKENDS, Backend
from runner.backends.onnxruntime import export, providers
from runner.backends.onnxruntime.binding import BoundSession
from runner.backends.onnxruntime.generate import greedy, start, step_feeds, step_outputs
from runner.backends.onnxruntime.graph import DTYPES, GRAPH_FILE, META_FILE, Graph
from runner.backends.onnxruntime.providers import GPU_PROVIDERS
from runner.backends.onnxruntime.session import open_session
from runner.config.model import Task
from runner.models.build import architecture_config
from runner.models.source import resolve_weights


def model_config(cfg, source):
    """The transformers config of the model, without its weights."""
    if source.kind == "pretrained":
        return AutoConfig.from_pretrained(
            source.location, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
        )
    return architecture_config(cfg.model)


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    session: BoundSession | None = None
    graph: Graph | None = None

    def load(self) -> dict[str, Any]:
        cfg = self.cfg
        self.source = resolve_weights(cfg.model)
        self.config = model_config(cfg, self.source)
        self.folder = export.cache_folder(cfg, self.source)
        self.providers = providers.requested(cfg.backend, self.ctx.device)
        self.eos_token_ids = self._eos_token_ids() if cfg.model.task == Task.causal_lm else []
        self.onnx = self._open()
        return {
            **self.source.record(cfg.model),
            "class": "onnxruntime.InferenceSession",
            "dtype": cfg.model.dtype.value,
            "attn_implementation": cfg.attention.implementation,  # what the exported graph was traced with
            "vocab_size": getattr(self.config, "vocab_size", None),
            "onnx_folder": str(self.folder),
            # the measured model is the session: the graph's size and parameters, and the session's load time
            "parameters": self.onnx.get("parameters"),
            "footprint_bytes": self.onnx["bytes"],
            "load_time_s": self.onnx["session_load_time_s"],
        }

    def _open(self) -> dict[str, Any]:
        """Export (or reuse the cached export) and open the session; returns the `convert.onnx` record."""
        cached = (self.folder / META_FILE).exists() and (self.folder / GRAPH_FILE).exists()
        self.graph = (
            Graph.load(self.folder) if cached else export.export(self.cfg, self.source, self.ctx.device, self.folder)
        )
        device = self.ctx.device
        # the provider computes on a stream of ours (not torch's default: ORT reads handle 0 as "none given")
        stream = torch.cuda.Stream(device) if device.type == "cuda" and self.providers[0] in GPU_PROVIDERS else None
        session, info = open_session(
            self.folder, self.graph, self.cfg, device, self.providers, stream.cuda_stream if stream else None
        )
        self.session = BoundSession(session, device, stream)
        return {
            "path": str(self.folder / GRAPH_FILE),
            "cache": "reused" if cached else "exported",
            "bytes": export.graph_bytes(self.folder),
            "with_kv_cache": self.graph.with_cache,
            **self.graph.export,
            **info,
        }

    def convert_record(self) -> dict[str, Any]:
        """The export's account, for the convert stage's `convert.onnx` (the session opened at load)."""
        return {"onnx": self.onnx}

    def _eos_token_ids(self) -> list[int]:
        eos = GenerationConfig.from_model_config(self.config).eos_token_id
        if self.source.kind == "pretrained":
            try:
                eos = GenerationConfig.from_pretrained(self.source.location).eos_token_id
            except OSError:  # no generation_config.json: the model config's tokens
                pass
        if eos is None:
            return []
        return [eos] if isinstance(eos, int) else list(eos)

    def _forward_binding(self, inputs: dict):
        graph = self.graph
        if graph.with_cache:
            ids = inputs["input_ids"]
            every = torch.arange(ids.shape[1], device=ids.device)  # positions and logits as a plain forward has
            past = graph.empty_past(ids.shape[0], ids.device)
            feeds = step_feeds(graph, ids, inputs["attention_mask"], every.expand_as(ids), past, every)
            return self.session.bind(feeds, step_outputs(graph, *ids.shape, past=0, kept=ids.shape[1])), "logits"
        batch, sequence = inputs["input_ids"].shape
        shape = graph.shape(graph.outputs[graph.main_output], batch=batch, sequence=sequence)
        feeds = {name: inputs[name] for name in graph.inputs}
        return self.session.bind(feeds, {graph.main_output: (shape, DTYPES[graph.dtype])}), graph.main_output

    def forward(self, inputs: dict) -> torch.Tensor:
        bound, name = self._forward_binding(inputs)
        return self.session.run_bound(bound)[name]

    def prepare_forward(self, inputs: dict):
        """Binds inputs and outputs once; every call reruns the session into the same output buffer."""
        bound, name = self._forward_binding(inputs)
        return lambda: self.session.run_bound(bound)[name]

    def label_names(self) -> dict | None:
        return getattr(self.config, "id2label", None)

    def generate(self, inputs: dict, new_tokens: int, on_step) -> torch.Tensor:
        return self.prepare_generate(inputs, new_tokens)(on_step)

    def prepare_generate(self, inputs: dict, new_tokens: int):
        begin = start(self.graph, inputs, self.eos_token_ids)
        return lambda on_step: greedy(self.session, self.graph, begin, new_tokens, on_step)

    def inference_context(self):
        return self.session.streamed() if self.session is not None else contextlib.nullcontext()

    def save(self, directory: Path) -> None:
        """The exported graph, its external weights and graph.json."""
        shutil.copytree(self.folder, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("tensorrt"))

    def unload(self) -> None:
        self.session = None
        gc.collect()
