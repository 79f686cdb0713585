"""PyTorch execution of a Transformers model."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessorList

from runner.backends.base import BACKENDS, Backend
from runner.backends.pytorch import load_options
from runner.backends.pytorch.compile import (
    compile_options,
    deferred_stop_check,
    graph_counts,
    inductor_options,
    kernel_configs,
    known_shapes,
    loaded_code_modules,
    require_compiled,
    use_persistent_cache,
)
from runner.backends.pytorch.host_loop import ExactLength, decode_masks, decode_masks_in_graph, eos_ids
from runner.config.model import Task
from runner.convert.attention import load_implementation
from runner.distributed import tp
from runner.models.build import build_model
from runner.models.source import resolve_weights
from runner.placement import placement_summary
from runner.quant import is_quantized
from runner.quant.compat import plain_linears
from runner.quant.report import quantization_report


@BACKENDS.register("pytorch")
class PyTorchBackend(Backend):
    name = "pytorch"
    model: Any = None
    compiled_calls = 0  # generate calls since load; the first compiles when convert.compile=true
    compiled_shapes: frozenset = frozenset()  # (input shapes, new tokens) of compiled generate calls made since load
    fused_decoder: Any = None  # convert.fused_decode: the runner's decode step (runner/fused_decode/), set by convert

    def load(self) -> dict[str, Any]:
        cfg = self.cfg
        source = resolve_weights(cfg.model)
        start = time.perf_counter()
        with plain_linears(cfg):  # so the quantizer sees every Linear layer (runner/quant/compat.py)
            self.model = build_model(
                cfg.model, source, load_implementation(cfg), self.ctx.device, **load_options.from_pretrained(cfg)
            )  # a conversion may supply the configured attention after loading (runner/convert/attention.py)
        for device in self.devices():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        load_time = time.perf_counter() - start
        config = self.model.config
        info = {
            **source.record(cfg.model),
            "class": type(self.model).__name__,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "parameters": self.model.num_parameters(),
            "footprint_bytes": self.model.get_memory_footprint(),
            "load_time_s": load_time,
            "attn_implementation": getattr(config, "_attn_implementation", None),
            "vocab_size": getattr(config, "vocab_size", None),
            "placement": placement_summary(self.model, self.ctx.device),
        }
        if is_quantized(cfg.quant):
            info["quantization"] = quantization_report(self.model, cfg)
            # the method's count is what really sits in memory (a torchao weight reports its logical dtype;
            # bitsandbytes' quantization state is neither a parameter nor a buffer)
            info["footprint_bytes"] = info["quantization"]["footprint_bytes"]
        if tp.enabled(cfg.hardware):  # proof that the layers were split, and this rank's share
            info["tensor_parallel"] = tp.shard_report(self.model)
        return info

    def forward(self, inputs: dict) -> torch.Tensor:
        with torch.inference_mode():
            out = self.model(**inputs)
        output = out.last_hidden_state if self.cfg.model.task == Task.feature_extraction else out.logits
        return output

    def label_names(self) -> dict | None:
        return getattr(self.model.config, "id2label", None)

    def generate(self, inputs: dict, new_tokens: int, on_step) -> torch.Tensor:
        if self.fused_decoder is not None:
            with torch.inference_mode():
                return self.fused_decoder.generate(inputs, new_tokens, on_step)
        config = self.model.generation_config
        generation = GenerationConfig(  # exactly new_tokens: ExactLength masks the end-of-sequence tokens
            max_new_tokens=new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=config.pad_token_id if config.pad_token_id is not None else 0,
            eos_token_id=config.eos_token_id,
            bos_token_id=config.bos_token_id,
            **compile_options(self.cfg),
        )
        first_compile = self.cfg.convert.compile and not self.compiled_calls
        if first_compile:
            inductor_cache = use_persistent_cache(self.cfg)
            self._counts_before = graph_counts()
            code_modules_before = loaded_code_modules()
            start = self._synchronized_clock()
        masks_in_graph, masks_record = decode_masks(self.cfg, self.model, inputs)
        shapes = (
            tuple(sorted((k, tuple(v.shape)) for k, v in inputs.items() if hasattr(v, "shape"))),
            new_tokens,
            masks_in_graph,  # the compiled step takes a mask, or builds its own: another graph
        )
        repeat = shapes in self.compiled_shapes
        with (
            torch.inference_mode(),
            deferred_stop_check(self.cfg) as stop_check,
            known_shapes(self.cfg, repeat),
            decode_masks_in_graph(self.model, masks_in_graph),
        ):
            output = self.model.generate(
                **inputs,
                generation_config=generation,
                logits_processor=LogitsProcessorList([ExactLength(on_step, eos_ids(config))]),
            )
        if self.cfg.convert.compile:
            require_compiled(self.model)
            self.compiled_calls += 1
            self.compiled_shapes = self.compiled_shapes | {shapes}
        if first_compile:  # compilation (or a cache hit), CUDA-graph capture and one generation
            self.compiled = {
                "first_call_s": self._synchronized_clock() - start,
                "mode": self.cfg.convert.compile_options.mode,
                "inductor_options": inductor_options(self.cfg),
                "stop_check": stop_check,
                "decode_masks": masks_record,
                "skip_guard_eval": self.cfg.convert.compile_options.skip_guard_eval,  # on repeated shapes
                "inductor_cache_dir": inductor_cache,
                # autotuning's pick for each kernel of the step: one slow pick can slow the whole step (§6p)
                "kernel_configs": kernel_configs(since=code_modules_before),
            }
        if self.cfg.convert.compile:  # CUDA graphs are recorded in the calls after the first: counted over them all
            now = graph_counts()
            self.compiled["counts"] = {key: now[key] - self._counts_before[key] for key in now}
        return output

    def _synchronized_clock(self) -> float:
        self.clock().synchronize()  # every GPU the model runs on
        return time.perf_counter()

    def inference_context(self):
        return load_options.inference_context(self.cfg)

    def input_device(self) -> torch.device:
        """Where the measured batch goes: the device of the input embeddings (a split model may put them on
        any of its GPUs)."""
        embeddings = self.model.get_input_embeddings() if self.model is not None else None
        weight = getattr(embeddings, "weight", None)
        if weight is None or weight.device.type == "meta":
            return self.ctx.device
        return weight.device

    def devices(self) -> list[torch.device]:
        placement = getattr(self.model, "hf_device_map", None)
        if not placement:
            return [self.ctx.device]
        found = {torch.device(f"cuda:{d}" if isinstance(d, int) else d) for d in placement.values()}
        return sorted(found, key=str)

    def save(self, directory: Path) -> None:
        self.model.save_pretrained(directory)

    def unload(self) -> None:
        self.model = None
        self.fused_decoder = None
        self.compiled_calls = 0
        self.compiled_shapes = frozenset()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
