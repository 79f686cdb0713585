"""Export a Transformers model to ONNX with `torch.onnx.export`, once: the graph is cached under
`$RUNNER_CACHE/onnx/<model>-<dtype>-<key>/` by everything that shapes it and reused by later runs.

Decoders are exported with their KV cache as flat inputs and outputs (see graph.py), so that generation can
run step by step in ONNX Runtime; a decoder that cannot be exported that way fails the run, it never falls
back to PyTorch."""

from __future__ import annotations

import gc
import inspect
import logging
import time
import warnings
from pathlib import Path

import torch
import transformers
from transformers import DynamicCache

from runner.backends.onnxruntime.config import Exporter, OnnxRuntimeBackendConfig
from runner.backends.onnxruntime.graph import GRAPH_FILE, Graph
from runner.backends.onnxruntime.sdpa_symbolic import typed_sdpa_mask
from runner.config.model import Task
from runner.config.run import RunConfig
from runner.errors import RunnerError
from runner.models import build
from runner.models.build import build_model
from runner.models.source import WeightsSource

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the graphs change, so older cached exports are not reused (2: float16 SDPA stays float16)
SAMPLE_BATCH, SAMPLE_SEQUENCE, SAMPLE_PAST = 2, 8, 4  # traced shapes: none is 0 or 1, so none is frozen


class ExportError(RunnerError):
    """The model could not be exported to ONNX."""


def _fingerprint(location: str | None) -> list | None:
    """Names, sizes and modification times of a local checkpoint's files: a changed checkpoint is re-exported."""
    if not location or not Path(location).is_dir():
        return None
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(location).iterdir() if p.is_file())


def cache_folder(cfg: RunConfig, source: WeightsSource) -> Path:
    model, backend = cfg.model, cfg.backend
    key = {
        "format": FORMAT,
        "model": [model.model_type, dict(model.architecture), model.task.value, model.revision],
        "weights": [source.kind, source.location, _fingerprint(source.location)],
        "seed": model.seed if source.kind == "random" else None,
        "dtype": model.dtype.value,
        "attention": cfg.attention.implementation,
        "exporter": [backend.exporter.value, backend.opset, torch.__version__, transformers.__version__],
    }
    return build.cache_folder("onnx", model, key)


class EncoderGraph(torch.nn.Module):
    """input_ids, attention_mask -> the model's main output."""

    def __init__(self, model, output: str) -> None:
        super().__init__()
        self.model, self.output = model, output

    def forward(self, input_ids, attention_mask):
        return getattr(self.model(input_ids=input_ids, attention_mask=attention_mask), self.output)


class DecoderGraph(torch.nn.Module):
    """input_ids, attention_mask[, position_ids][, logits_to_keep], past.* -> logits, present.*

    The cache is rebuilt from the flat past tensors at every call. A DynamicCache without a config keeps every
    layer's tokens: a sliding-window layer counts tokens in a Python int, which tracing would freeze."""

    def __init__(self, model, layers: int, extra: list[str]) -> None:
        super().__init__()
        self.model, self.layers, self.extra = model, layers, extra
        self.cache_argument = cache_argument(model)

    def forward(self, input_ids, attention_mask, *rest):
        kwargs = dict(zip(self.extra, rest[: len(self.extra)], strict=True))
        past = rest[len(self.extra) :]
        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        kwargs[self.cache_argument] = cache
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=True, **kwargs)
        present = [t for layer in cache.layers for t in (layer.keys, layer.values)]
        return (out.logits, *present)


def cache_argument(model) -> str:
    """transformers renamed `past_key_values` to `cache` (5.2x); the old name still works there, with a warning."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _sample_tokens(vocab_size: int, batch: int, length: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(min(8, vocab_size - 1), vocab_size, (batch, length), generator=generator).to(device)


def _sample_mask(length: int, device: torch.device) -> torch.Tensor:
    # one padded position: with an all-ones mask transformers may drop the mask, and tracing would keep that
    mask = torch.ones(SAMPLE_BATCH, length, dtype=torch.long, device=device)
    mask[1, 0] = 0
    return mask


def _encoder(model, task: Task, device: torch.device):
    output = "last_hidden_state" if task == Task.feature_extraction else "logits"
    ids = _sample_tokens(model.config.vocab_size, SAMPLE_BATCH, SAMPLE_SEQUENCE, device)
    args = (ids, _sample_mask(SAMPLE_SEQUENCE, device))
    with torch.inference_mode():
        sample = getattr(model(input_ids=args[0], attention_mask=args[1]), output)
    tokens = ["batch", "sequence"]
    out_shape = ["batch", *list(sample.shape[1:])]
    if sample.dim() == 3:
        out_shape[1] = "sequence"
    inputs = {"input_ids": tokens, "attention_mask": tokens}
    return EncoderGraph(model, output), args, inputs, {output: out_shape}, 0, output


def _decoder(model, device: torch.device):
    """The wrapper, traced arguments and shape templates of a decoder with its KV cache."""
    vocab = model.config.vocab_size
    cache = DynamicCache()
    with torch.inference_mode():
        ids = _sample_tokens(vocab, SAMPLE_BATCH, SAMPLE_SEQUENCE, device)
        probe = model(input_ids=ids, use_cache=True, **{cache_argument(model): cache})
    layers = len(cache.layers)
    if not layers or any(getattr(layer, "keys", None) is None for layer in cache.layers):
        raise ExportError(
            f"{type(model).__name__} keeps no key/value tensors in a DynamicCache (found {cache!r}), so it cannot "
            "be exported with its cache for generation"
        )
    _, heads, _, head_dim = cache.layers[0].keys.shape
    accepted = inspect.signature(model.forward).parameters
    extra = [name for name in ("position_ids", "logits_to_keep") if name in accepted]

    ids = _sample_tokens(vocab, SAMPLE_BATCH, SAMPLE_SEQUENCE, device)
    mask = _sample_mask(SAMPLE_PAST + SAMPLE_SEQUENCE, device)
    samples = {
        "position_ids": (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)[:, SAMPLE_PAST:],
        "logits_to_keep": torch.arange(SAMPLE_SEQUENCE - 3, SAMPLE_SEQUENCE, device=device),
    }
    generator = torch.Generator().manual_seed(0)
    past = [
        torch.randn(SAMPLE_BATCH, heads, SAMPLE_PAST, head_dim, generator=generator).to(device, model.dtype)
        for _ in range(2 * layers)
    ]
    args = (ids, mask, *(samples[name] for name in extra), *past)

    inputs = {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "total_sequence"]}
    inputs |= {name: ["batch", "sequence"] if name == "position_ids" else ["kept"] for name in extra}
    kv = ["batch", heads, "past_sequence", head_dim]
    logits_axis = "kept" if "logits_to_keep" in extra else "sequence"
    outputs = {"logits": ["batch", logits_axis, probe.logits.shape[-1]]}
    for i in range(layers):
        for part in ("key", "value"):
            inputs[f"past.{i}.{part}"] = kv
            outputs[f"present.{i}.{part}"] = ["batch", heads, "total_sequence", head_dim]
    return DecoderGraph(model, layers, extra), args, inputs, outputs, layers, "logits"


def _torch_export(module, args, path: Path, inputs: dict, outputs: dict, backend: OnnxRuntimeBackendConfig) -> None:
    names = list(inputs)
    common = {"opset_version": backend.opset, "input_names": names, "output_names": list(outputs)}
    if backend.exporter == Exporter.torchscript:
        axes = {
            name: {i: d for i, d in enumerate(shape) if isinstance(d, str)}
            for name, shape in (inputs | outputs).items()
        }
        with typed_sdpa_mask():  # torch's SDPA symbolic turns float16 attention into float32 (sdpa_symbolic.py)
            torch.onnx.export(module, args, str(path), dynamo=False, dynamic_axes=axes, **common)
        return
    dims = {d: torch.export.Dim(d) for shape in inputs.values() for d in shape if isinstance(d, str)}
    shapes = [{i: dims[d] for i, d in enumerate(inputs[n]) if isinstance(d, str)} for n in names]
    # the wrapper's trailing inputs arrive as one *args tuple; torch.export wants their shapes grouped the same way
    params = inspect.signature(module.forward).parameters.values()
    fixed = sum(p.kind != p.VAR_POSITIONAL for p in params)
    dynamic_shapes = (*shapes[:fixed], tuple(shapes[fixed:])) if fixed < len(params) else tuple(shapes)
    torch.onnx.export(module, args, str(path), dynamo=True, dynamic_shapes=dynamic_shapes, external_data=True, **common)


def _trace_into(tmp: Path, cfg: RunConfig, source: WeightsSource, device: torch.device) -> dict:
    """Build the PyTorch model and export it into `tmp`; the model is dropped when this returns."""
    model = build_model(cfg.model, source, cfg.attention.implementation, device)
    if cfg.model.task == Task.causal_lm:
        module, args, inputs, outputs, layers, main_output = _decoder(model, device)
    else:
        module, args, inputs, outputs, layers, main_output = _encoder(model, cfg.model.task, device)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python values; the shapes that vary are traced
        _torch_export(module, args, tmp / GRAPH_FILE, inputs, outputs, cfg.backend)
    return {
        "inputs": inputs,
        "outputs": outputs,
        "layers": layers,
        "main_output": main_output,
        "parameters": model.num_parameters(),
    }


def export(cfg: RunConfig, source: WeightsSource, device: torch.device, folder: Path) -> Graph:
    """Export the model into `folder`. It is written under a name of this process, then renamed: an interrupted
    export leaves no half-written cache, and of two runs exporting the same model at once, the first one wins."""
    backend = cfg.backend
    what = f"model={cfg.model.name} (exporter={backend.exporter.value}, opset {backend.opset})"
    log.info("exporting %s to ONNX in %s (once; later runs reuse it)", what, folder)
    start = time.perf_counter()
    with build.filling(folder) as tmp:  # renamed into place when the block ends; removed if it fails
        graph = _export_into(tmp, cfg, source, device, what, start)
        graph.save(tmp)
    return graph


def _export_into(tmp: Path, cfg: RunConfig, source: WeightsSource, device: torch.device, what: str, start: float):
    backend = cfg.backend
    try:
        traced = _trace_into(tmp, cfg, source, device)
    except Exception as e:
        cache = " with its KV cache" if cfg.model.task == Task.causal_lm else ""
        first_line = (str(e).splitlines() or [""])[0][:500]
        hint = (
            ""
            if isinstance(e, ExportError)
            else (". Try the other backend.exporter (torchscript, dynamo) or another backend.opset")
        )
        raise ExportError(
            f"{what} could not be exported to ONNX{cache}: {type(e).__name__}: {first_line}{hint}; "
            "the run does not fall back to PyTorch"
        ) from e
    finally:
        gc.collect()  # the PyTorch model is gone: give its memory back before ONNX Runtime allocates
        if device.type == "cuda":
            torch.cuda.empty_cache()
    parameters = traced.pop("parameters")
    graph = Graph(
        **traced,
        dtype=cfg.model.dtype.value,
        export={
            "exporter": backend.exporter.value,
            "opset": backend.opset,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "attn_implementation": cfg.attention.implementation,
            "parameters": parameters,
            "export_time_s": time.perf_counter() - start,
        },
    )
    return graph


def graph_bytes(folder: Path) -> int:
    """The graph and its weights (external data files included)."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
