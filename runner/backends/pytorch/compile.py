"""`convert.compile=true`: decode with a static KV cache and a compiled forward, through Transformers' own
generate auto-compilation, with the host kept out of the GPU's way and the kernels tuned (convert.compile_options).

- Mode and inductor options: torch.compile takes a mode or options, not both, so the mode is expanded into its
  inductor options (max-autotune: CUDA graphs + autotuned matmuls) and coordinate descent is added to them.
- Stop check: generate reads `unfinished_sequences.max() == 0` on the host after every step, which waits for the
  GPU each time. transformers (5.17 and later) has DeferredStopCheck, which reads that flag one step late, but
  turns it on for mps only; it is turned on for CUDA around the runner's generate calls. The runner generates
  exactly new_tokens (host_loop.ExactLength masks the end-of-sequence tokens), so the stop always comes from the
  length, which the check knows on the host: no extra step, and the tokens are those of plain generate.
- Caches: inductor's FX-graph and autotuning caches go to $RUNNER_CACHE/inductor (TORCHINDUCTOR_CACHE_DIR), so
  the jobs of a sweep that share shapes reuse compiled kernels and autotuning results across processes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transformers import CompileConfig

from runner.config.run import RunConfig
from runner.errors import OptimizationNotApplied

DEFERRED_ON = ("cuda",)  # device types where the stop flag is read a step late (CUDA events exist there)


REALIZE_ACC_READS_UNQUANTIZED = 2  # convert.compile_options.realize_acc_reads_threshold=null, unquantized weights


def realize_acc_reads_threshold(cfg: RunConfig) -> int | None:
    """The inductor threshold this run sets (None: inductor's own): the explicit setting, else 2 for unquantized
    weights where this torch has the option."""
    from torch._inductor import config as inductor_config

    from runner.quant import is_quantized

    threshold = cfg.convert.compile_options.realize_acc_reads_threshold
    if threshold is None and not is_quantized(cfg.quant) and hasattr(inductor_config, "realize_acc_reads_threshold"):
        threshold = REALIZE_ACC_READS_UNQUANTIZED
    return threshold


def inductor_options(cfg: RunConfig) -> dict[str, Any]:
    import torch._inductor
    from torch._inductor import config as inductor_config

    settings = cfg.convert.compile_options
    options = dict(torch._inductor.list_mode_options(settings.mode))
    # max-autotune's own options turn coordinate descent on too: the runner's setting has the word, both ways
    options["coordinate_descent_tuning"] = settings.coordinate_descent_tuning
    if (threshold := realize_acc_reads_threshold(cfg)) is not None:
        options["realize_acc_reads_threshold"] = threshold
    options.update(settings.inductor)
    if (
        options.get("coordinate_descent_tuning")
        and options.get("triton.cudagraphs")
        and "use_static_cuda_launcher" not in settings.inductor
        and "use_static_cuda_launcher" in inductor_config.get_config_copy()
    ):
        # A graph loaded from inductor's cache brings its kernels back through the static CUDA launcher, and torch
        # 2.11 then runs coordinate descent again on about half of them (pytorch#172819, #181789): a sweep's later
        # job and a tuning trial's job drew picks of their own, not the cached ones (docs/benchmarks.md §6q).
        # Through Triton's own launcher most come back with the cached picks (the record's
        # tuning_trials.retuned_kernels names the others). Under CUDA graphs that launcher costs nothing per step;
        # without them it would cost host time on every launch, so it is left as torch sets it there.
        options["use_static_cuda_launcher"] = False
    return options


def compile_options(cfg: RunConfig) -> dict[str, Any]:
    if not cfg.convert.compile:
        return {}
    settings = cfg.convert.compile_options
    return {
        "cache_implementation": "static",
        "compile_config": CompileConfig(fullgraph=settings.fullgraph, mode=None, options=inductor_options(cfg)),
    }


def graph_counts() -> dict[str, int]:
    """Counts of dynamo and inductor that say whether the decode step runs as compiled, for the record (as
    differences over a job): `cudagraph_skips` above zero means inductor ran a graph without CUDA graphs (every kernel
    then launches from the host, a decode several times slower; inductor says why only under
    TORCH_LOGS=perf_hints); `graphs` is the graphs dynamo compiled, `graph_breaks` where it fell back to Python.
    Whether the compilation came from inductor's caches: `fx_graph_cache_hits` / `_misses` / `_bypasses` (a hit loads
    the generated code, picks included), and `coordinate_descent_benchmarks`, the kernel timings coordinate descent
    ran (zero when every kernel's pick came from the autotuning cache)."""
    from torch._dynamo.utils import counters

    inductor = counters["inductor"]
    return {
        "graphs": counters["stats"]["unique_graphs"],
        "graph_breaks": sum(counters["graph_break"].values()),
        "cudagraph_skips": inductor["cudagraph_skips"],
        "fx_graph_cache_hits": inductor["fxgraph_cache_hit"],
        "fx_graph_cache_misses": inductor["fxgraph_cache_miss"],
        "fx_graph_cache_bypasses": inductor["fxgraph_cache_bypass"],
        "coordinate_descent_benchmarks": inductor["coordesc_tuning_bench"],
    }


def loaded_code_modules() -> int:
    """How many modules of generated code inductor has loaded in this process: kernel_configs reads those after it."""
    from torch._inductor.codecache import PyCodeCache

    return len(PyCodeCache.modules)


def kernel_configs(since: int = 0, modules: list | None = None) -> dict[str, dict[str, int | str]]:
    """The launch configuration autotuning chose for each Triton kernel of the code inductor loaded after the first
    `since` modules (default: PyCodeCache's modules of this process): kernel name -> block sizes, warps and stages.
    The picks vary between processes with cold caches, and one slow pick can slow the whole decode step: on the H200
    one kernel of a bf16 step took 81 us a launch where it usually takes 26-31, and the step 5.8 ms instead of 4.2-4.7
    (docs/benchmarks.md §6p). Only the compiled graphs' own code counts (modules with a `call`, not the candidates
    max-autotune benchmarks on its way); a kernel with more than one launcher left (not yet tuned) is left out. A
    diagnostic: what cannot be read is skipped, never raised."""
    if modules is None:
        from torch._inductor.codecache import PyCodeCache

        modules = PyCodeCache.modules
    found = {}
    for module in modules[since:]:
        if not callable(getattr(module, "call", None)):
            continue
        for name, kernel in list(vars(module).items()):
            launchers = getattr(kernel, "launchers", None)
            if not name.startswith("triton_") or not isinstance(launchers, list) or len(launchers) != 1:
                continue
            try:
                config = launchers[0].config
                found[name] = {
                    **{key: value if isinstance(value, int) else str(value) for key, value in config.kwargs.items()},
                    "num_warps": int(config.num_warps),
                    "num_stages": int(config.num_stages),
                }
            except (AttributeError, TypeError, ValueError):
                continue
    return dict(sorted(found.items()))


def cache_dir() -> Path:
    return Path(os.environ.get("RUNNER_CACHE", "outputs/.cache")).resolve() / "inductor"


def use_persistent_cache(cfg: RunConfig) -> str | None:
    """Point inductor's caches into the runner cache (before the first compilation of this process)."""
    if not (cfg.convert.compile and cfg.convert.compile_options.persistent_cache):
        return os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    # a user's own setting wins; torch's default is no setting (inductor writes it into the environment itself
    # at its first compilation in a process)
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR") in (None, default_cache_dir()):
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


@contextlib.contextmanager
def deferred_stop_check(cfg: RunConfig) -> Iterator[str]:
    """Within the block, generate's DeferredStopCheck also runs on CUDA; yields what the record says."""
    from transformers.generation import utils as generation

    check = getattr(generation, "DeferredStopCheck", None)
    if not (cfg.convert.compile and cfg.convert.compile_options.defer_stop_check):
        yield "per step (transformers' default)"
        return
    if check is None:  # transformers before 5.17: the stop flag stays a per-step host read
        yield "per step (this transformers has no DeferredStopCheck)"
        return
    original = check.__dict__["is_supported"]

    def is_supported(device, cache, cache_is_returned, is_assistant) -> bool:
        if device.type in DEFERRED_ON and not is_assistant:
            return cache is None or cache.is_croppable or not cache_is_returned
        return original.__func__(device, cache, cache_is_returned, is_assistant)

    check.is_supported = staticmethod(is_supported)
    try:
        yield f"deferred one step on {', '.join(DEFERRED_ON)} (transformers' DeferredStopCheck)"
    finally:
        check.is_supported = original


@contextlib.contextmanager
def known_shapes(cfg: RunConfig, repeat: bool) -> Iterator[None]:
    """A generate call whose shapes an earlier call compiled (`repeat`) runs without dynamo's guard checks
    (convert.compile_options.skip_guard_eval): they cost host time on every decode step, most with tensor-subclass
    weights. Only repeats skip them: with a single compiled graph, unchecked new shapes would run the wrong one."""
    if not (repeat and cfg.convert.compile and cfg.convert.compile_options.skip_guard_eval):
        yield
        return
    import torch

    with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
        yield


def require_compiled(model) -> None:
    """Transformers only warns when it cannot compile (a quantizer that forbids it, CPU offload): fail instead."""
    if getattr(model, "_compiled_call", None) is None:
        raise OptimizationNotApplied(
            "convert.compile=true, but Transformers did not compile the decode step (a non-compilable "
            "quantization or CPU offload prevents it; see the log). Run without convert.compile"
        )
