"""Schema of the `pipeline` group: which stages run, in order."""

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# torch.compile's modes, each a set of inductor options (torch._inductor.list_mode_options); checked before loading
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class CompileOptions:
    """How `convert.compile=true` compiles. The defaults won on an H200 (7B llama bf16, batch 1, 128-token
    prompt; docs/benchmarks.md): reduce-overhead 6.88 ms/token, + deferred stop check 5.12, + max-autotune and
    coordinate descent 4.33."""

    mode: str = "max-autotune"  # reduce-overhead: CUDA graphs; max-autotune: + autotuned matmuls
    # inductor tunes each Triton kernel's block sizes; false turns it off, also in max-autotune (which turns it on)
    coordinate_descent_tuning: bool = True
    fullgraph: bool = True  # fail rather than split the decode step into graphs and Python
    # read generate's stop flag one step late (transformers' DeferredStopCheck), so the host queues the next
    # step while the GPU runs this one; tokens are those of plain generate
    defer_stop_check: bool = True
    # with a static cache, generate builds each decode step's attention mask on the host; for unpadded inputs the
    # compiled step builds the same causal mask inside its graph instead (runner/backends/pytorch/host_loop.py)
    masks_in_graph: bool = True
    # inductor's FX-graph and autotuning caches in $RUNNER_CACHE/inductor, shared by every job of a sweep
    persistent_cache: bool = True
    # torchao: the quantized weights become plain tensors (torchao's unwrap_tensor_subclass), which the compiled
    # step rebuilds inside the graph, instead of tensor subclasses that every call flattens and guards in Python;
    # the runner's Triton quants: each Linear calls its kernel on its weight's packed tensors (quant/kernel_linears.py)
    unwrap_subclasses: bool = True
    # a generate call with the same shapes as an earlier one runs the compiled step without re-checking dynamo's
    # guards (torch.compiler.set_stance(skip_guard_eval_unsafe=True)); new shapes are checked as usual
    skip_guard_eval: bool = True
    # inductor realizes (writes out) a pointwise result once it reads more than this many buffers. 2 makes it write
    # every RMSNorm's output, so every layer runs the same kernels: with inductor's own 8, half the layers fold the
    # norm into their q/k/v and gate/up kernels (6-14 % slower ones) and layer 0 gathers the embedding row inside its
    # q/k/v loop (docs/benchmarks.md §6o: bf16 1.4-4.2 % faster in 4 of 5 pairs on an H200). null (default): 2 for
    # unquantized weights, where it was measured, inductor's own elsewhere; a number: that, for every run
    realize_acc_reads_threshold: int | None = None
    inductor: dict[str, Any] = field(default_factory=dict)  # further inductor options, e.g. {epilogue_fusion: false}
    # compile the step this many times, each in a process of its own with a cold cache (its own autotuning picks),
    # and run the job with the fastest (runner/tuning_trials.py): one slow pick can slow a 7B step 1.4x on an H200
    # (docs/benchmarks.md §6p); each trial costs a load and a compilation more, the job then runs in a process of its
    # own (whatever isolate says) and timeout_s applies to each process. 1: compile once, as torch.compile does
    tuning_trials: int = 1


@dataclass
class ConvertConfig:
    bettertransformer: bool = False
    # generate with a static KV cache and a compiled decode step (torch.compile, CUDA graphs)
    compile: bool = False
    compile_options: CompileOptions = field(default_factory=CompileOptions)
    # Llama-architecture models: q/k/v as one matrix and gate/up as another (runner/convert/fused_projections.py).
    # null (default): automatic, on where the quantization method's kernels read fused matrices faster
    # (QuantMethod.prefers_fused_projections: quant=int4wo_triton, int8wo_triton, 1.13x and 1.21x faster decode on
    # the H200, docs/benchmarks.md §6k) and the run allows it, off elsewhere (bf16: 8 % slower there, §6k); true:
    # always, refused before loading where it cannot apply; false: never
    fuse_projections: bool | None = None
    # Llama-architecture models, batch 1, generate: every token after the prompt by the runner's own decode step, a
    # few Triton kernels a layer captured as one CUDA graph (runner/fused_decode/; the CPU runs the same step in
    # PyTorch), over plain weights or quant=int4wo_triton / int8wo_triton. Transformers still runs the prompt. Fuses
    # the projections (convert.fuse_projections) for its reads. 7B on the H200: bf16 3.70 ms/token, 76 % of the
    # bandwidth (compiled: 4.16), int4 2.28 (docs/benchmarks.md §6s)
    fused_decode: bool = False

    def switched_on(self) -> list[str]:
        """The conversions this run applies (the boolean switches set to true; compile_options only say how
        convert.compile compiles)."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is True]


@dataclass
class SaveConfig:
    model: bool = False  # write save_pretrained output into the run folder
    directory: str = "model"  # relative to the run folder


MODEL_STAGE = "load"  # the stage that makes the model; every other stage uses it, so it runs first
DEFAULT_STAGES = ("load", "convert", "warmup", "infer", "compare", "quality", "verify", "reverse", "save")


@dataclass
class PipelineConfig:
    name: str = "default"
    stages: list[str] = field(default_factory=lambda: list(DEFAULT_STAGES))
