"""convert.compile=true: the compile settings reach torch.compile, the stop check is deferred on CUDA only while
the runner generates, inductor's caches land in the runner cache; on a GPU, the compiled decode gives the tokens
of plain generate and records its compile time."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
from transformers.generation import utils as generation

from runner.backends.pytorch.compile import compile_options, deferred_stop_check, use_persistent_cache
from runner.config.load import to_run_config
from runner.errors import ConfigError
from tests.conftest import COMPILED_ON_GPU, compose_config

deferred = pytest.mark.skipif(
    not hasattr(generation, "DeferredStopCheck"), reason="this transformers has no DeferredStopCheck"
)


def compiled(*overrides: str):
    return to_run_config(compose_config(["hardware=cpu", "scenario=generate", *overrides]))


def with_compile(cfg):
    return dataclasses.replace(cfg, convert=dataclasses.replace(cfg.convert, compile=True))


def options(*overrides: str) -> dict:
    """The inductor options torch.compile gets for a compiled run with these overrides."""
    return compile_options(with_compile(compiled(*overrides)))["compile_config"].options


def test_default_compile_is_max_autotune_with_coordinate_descent():
    config = compile_options(with_compile(compiled()))["compile_config"]
    # torch.compile takes a mode or options: the mode is expanded into its options; unquantized weights also get
    # the realize threshold that makes inductor write each RMSNorm's output once (docs/benchmarks.md §6o)
    assert config.mode is None and config.fullgraph is True
    assert config.options == {
        "max_autotune": True,
        "triton.cudagraphs": True,
        "coordinate_descent_tuning": True,
        "use_static_cuda_launcher": False,  # a cached graph's kernels keep their tuned picks (§6q)
        "realize_acc_reads_threshold": 2,
    }
    assert compile_options(compiled()) == {}


def test_coordinate_descent_follows_the_setting_and_cached_kernels_keep_their_picks_under_cuda_graphs():
    # max-autotune's own options turn coordinate descent on: the runner's setting turns it off all the same
    off = options("convert.compile_options.coordinate_descent_tuning=false")
    assert off["coordinate_descent_tuning"] is False and "use_static_cuda_launcher" not in off
    assert options("convert.compile_options.mode=reduce-overhead")["use_static_cuda_launcher"] is False
    no_graphs = options("convert.compile_options.mode=max-autotune-no-cudagraphs")
    assert no_graphs["coordinate_descent_tuning"] and "use_static_cuda_launcher" not in no_graphs  # a host cost there
    assert options("+convert.compile_options.inductor.use_static_cuda_launcher=true")["use_static_cuda_launcher"]


def test_realize_threshold_is_the_runners_for_unquantized_weights_only_unless_set():
    assert "realize_acc_reads_threshold" not in options("quant=8bit")  # not measured there: inductor's own
    assert (
        options("quant=8bit", "convert.compile_options.realize_acc_reads_threshold=3")["realize_acc_reads_threshold"]
        == 3
    )
    assert (
        options("+convert.compile_options.inductor.realize_acc_reads_threshold=5")["realize_acc_reads_threshold"] == 5
    )  # inductor's own options have the last word
    with pytest.raises(ConfigError, match=r"realize_acc_reads_threshold=-1: use a count of buffer reads \(>= 0\)"):
        compiled("convert.compile_options.realize_acc_reads_threshold=-1")


def test_compile_settings_reach_torch_compile():
    assert options(
        "convert.compile_options.mode=reduce-overhead",
        "convert.compile_options.coordinate_descent_tuning=false",
        "+convert.compile_options.inductor.epilogue_fusion=false",
    ) == {
        "triton.cudagraphs": True,
        "coordinate_descent_tuning": False,
        "realize_acc_reads_threshold": 2,
        "epilogue_fusion": False,
    }
    with pytest.raises(ConfigError, match="mode=max-autotun is not a torch.compile mode: use default, reduce-overhead"):
        compiled("convert.compile_options.mode=max-autotun")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("{benchmark_fusions:true}", r"benchmark_fusions is not an inductor option .* Did you mean 'benchmark_fusion'"),
        ("{triton.cudagraph:true}", r"Did you mean 'triton.cudagraphs'"),
        ("{benchmark_fusion:3}", r"inductor.benchmark_fusion=3: inductor takes a bool there \(default False\)"),
    ],
)
def test_unknown_or_mistyped_inductor_options_are_refused_before_loading(option, message):
    with pytest.raises(ConfigError, match=message):
        compiled(f"+convert.compile_options.inductor={option}")
    assert compiled("+convert.compile_options.inductor={benchmark_fusion:true,triton.cudagraphs:false}")


@deferred
def test_stop_check_is_deferred_on_cuda_only_inside_generate():
    check = generation.DeferredStopCheck
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert not check.is_supported(cuda, None, False, False)
    cfg = with_compile(compiled())
    with deferred_stop_check(cfg) as what:
        assert "deferred" in what
        assert check.is_supported(cuda, None, False, False)
        assert not check.is_supported(cuda, None, False, True)  # assisted decoding keeps transformers' rule
        assert not check.is_supported(cpu, None, False, False)  # no events on the CPU
    assert not check.is_supported(cuda, None, False, False)  # restored
    off = with_compile(compiled("convert.compile_options.defer_stop_check=false"))
    with deferred_stop_check(off) as what:
        assert what.startswith("per step")
        assert not check.is_supported(cuda, None, False, False)


def test_inductor_caches_go_to_the_runner_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    folder = use_persistent_cache(with_compile(compiled()))
    assert folder == str(tmp_path / "inductor") and (tmp_path / "inductor").is_dir()
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    assert use_persistent_cache(with_compile(compiled("convert.compile_options.persistent_cache=false"))) is None


def test_compile_settings_are_not_counted_as_conversions():
    from runner.agreement import reference_changes

    assert not [c for c in reference_changes(compiled()) if c.startswith("convert.")]


@pytest.mark.gpu
@deferred
def test_compiled_decode_gives_the_tokens_of_plain_generate(run_job):
    from runner.models.build import build_random

    # float32: the loop's changes (deferred stop check, in-graph masks, exact length) must not change a token. In
    # bfloat16 the compiled kernels round differently from eager's and may flip a near-tie of random weights: on a
    # 2x H200 host (after 98c79c5) one of two rows repeated a token once less and then went on the same
    cfg = to_run_config(
        compose_config(["hardware=cuda", "scenario=generate", "model.dtype=float32", "convert.compile=true"])
    )
    model = build_random(cfg.model, "sdpa", torch.device("cuda")).eval()
    ids = torch.randint(0, 1000, (2, 16), device="cuda")
    common = {"max_new_tokens": 24, "min_new_tokens": 24, "do_sample": False}
    plain = model.generate(ids, **common)
    with deferred_stop_check(cfg):
        for _ in range(2):  # the second call replays the captured graphs
            fast = model.generate(ids, **common, **compile_options(cfg))
    assert torch.equal(plain, fast)


@pytest.mark.gpu
def test_compile_time_and_stop_check_are_recorded(run_job):
    record = run_job(*COMPILED_ON_GPU, "scenario.new_tokens=16", fast=False)
    assert record["status"] == "ok", record.get("error")
    compile_record = record["convert"]["compile"]
    assert compile_record["first_call_s"] > 0
    assert compile_record["mode"] == "max-autotune"
    assert compile_record["stop_check"].startswith("deferred")
    assert compile_record["inductor_cache_dir"].endswith("inductor")
    counts = compile_record["counts"]
    assert counts["graphs"] >= 1 and counts["cudagraph_skips"] == 0, counts  # the step ran as CUDA graphs
    picks = compile_record["kernel_configs"]  # autotuning's pick for every Triton kernel of the step
    assert any("mm" in name and "XBLOCK" in pick for name, pick in picks.items()), picks
    assert all(pick["num_warps"] >= 1 for pick in picks.values()), picks


def test_kernel_configs_lists_the_picks_of_the_modules_loaded_since():
    from types import ModuleType, SimpleNamespace

    from runner.backends.pytorch.compile import kernel_configs

    def module(**attrs):
        found = ModuleType("generated")
        vars(found).update({"call": lambda args: None, **attrs})  # a compiled graph's code: it has a `call`
        return found

    def tuned(num_warps, **blocks):
        return SimpleNamespace(
            launchers=[SimpleNamespace(config=SimpleNamespace(kwargs=blocks, num_warps=num_warps, num_stages=1))]
        )

    earlier = module(triton_red_fused_mm_0=tuned(4, XBLOCK=8, R0_BLOCK=512))
    step = module(
        triton_red_fused_mm_t_view_6=tuned(16, XBLOCK=2, R0_BLOCK=4096),
        triton_poi_fused_add_1=tuned(4, XBLOCK=256),
        triton_red_fused_not_run_2=SimpleNamespace(launchers=[]),  # not launched yet: no pick
        async_compile=SimpleNamespace(launchers=[object()]),  # not a kernel
        triton_poi_fused_odd_3=SimpleNamespace(launchers=[SimpleNamespace(config=None)]),  # unreadable: skipped
    )
    candidate = ModuleType("benchmarked")  # a max-autotune candidate's code (no `call`): not the step's
    candidate.triton_tem_fused_mm_0 = tuned(8, BLOCK_M=64)
    assert kernel_configs(since=1, modules=[earlier, candidate, step]) == {
        "triton_poi_fused_add_1": {"XBLOCK": 256, "num_warps": 4, "num_stages": 1},
        "triton_red_fused_mm_t_view_6": {"XBLOCK": 2, "R0_BLOCK": 4096, "num_warps": 16, "num_stages": 1},
    }
    assert set(kernel_configs(modules=[earlier, step])) == {
        "triton_red_fused_mm_0", "triton_red_fused_mm_t_view_6", "triton_poi_fused_add_1",
    }  # fmt: skip


def test_graph_counts_count_compiled_graphs_and_breaks():
    import torch

    from runner.backends.pytorch.compile import graph_counts

    def step(x):
        y = x * 2
        torch._dynamo.graph_break()
        return y + 1

    before = graph_counts()
    torch.compile(step, backend="eager")(torch.ones(3))
    after = graph_counts()
    assert after["graphs"] - before["graphs"] == 2  # one graph on each side of the break
    assert after["graph_breaks"] - before["graph_breaks"] == 1
    assert after["cudagraph_skips"] == before["cudagraph_skips"]


def test_graph_counts_say_whether_inductor_compiled_or_loaded_its_cache(tmp_path, monkeypatch):
    """What a record's counts say of a compilation that reused inductor's caches (a sweep's later job, a tuning
    trial's cache): a hit loads the generated code, with its autotuning picks."""
    import torch

    from runner.backends.pytorch.compile import graph_counts

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))

    def step(x):
        return (x * 2 + 1).sum()

    changes = []
    for _ in range(2):  # the same graph twice, dynamo's in-memory state dropped in between
        torch._dynamo.reset()
        before = graph_counts()
        torch.compile(step, backend="inductor")(torch.ones(8))
        after = graph_counts()
        changes.append({key: after[key] - before[key] for key in after})
    assert (changes[0]["fx_graph_cache_misses"], changes[0]["fx_graph_cache_hits"]) == (1, 0), changes
    assert (changes[1]["fx_graph_cache_misses"], changes[1]["fx_graph_cache_hits"]) == (0, 1), changes
    # the counters the record reads are the ones torch counts (a misspelt name would read 0 forever)
    from torch._inductor import codecache
    from torch._inductor.runtime import triton_heuristics

    assert all(f'"{name}"' in inspect.getsource(codecache) for name in ("fxgraph_cache_hit", "fxgraph_cache_bypass"))
    assert '"coordesc_tuning_bench"' in inspect.getsource(triton_heuristics)


def _stance():
    from torch._dynamo import eval_frame

    return eval_frame._stance.skip_guard_eval_unsafe


def test_guards_are_skipped_only_for_shapes_compiled_before():
    from runner.backends.pytorch.compile import known_shapes

    cfg = with_compile(compiled())
    with known_shapes(cfg, repeat=True):
        assert _stance()  # the same shapes as an earlier compiled call: no guard checks
    assert not _stance()
    with known_shapes(cfg, repeat=False):
        assert not _stance()  # new shapes: dynamo checks its guards and recompiles if it must
    with known_shapes(with_compile(compiled("convert.compile_options.skip_guard_eval=false")), repeat=True):
        assert not _stance()
    with known_shapes(compiled(), repeat=True):  # no convert.compile
        assert not _stance()


def test_the_backend_skips_guards_from_the_second_call_with_the_same_shapes(monkeypatch):
    """PyTorchBackend.generate: the first call with given input shapes and length checks guards, later ones with
    the same shapes do not, a call with new shapes does again."""
    from types import SimpleNamespace

    from runner.backends.pytorch import backend as backend_module

    seen = []

    class Model:
        generation_config = SimpleNamespace(pad_token_id=0, eos_token_id=None, bos_token_id=None)
        _compiled_call = object()

        def generate(self, **kwargs):
            seen.append(_stance())
            return kwargs["input_ids"]

    monkeypatch.setattr(backend_module, "use_persistent_cache", lambda cfg: None)
    backend = backend_module.PyTorchBackend.__new__(backend_module.PyTorchBackend)
    backend.cfg, backend.model = with_compile(compiled()), Model()
    backend._synchronized_clock = lambda: 0.0
    short, long = (
        {"input_ids": torch.zeros(1, 8, dtype=torch.long)},
        {"input_ids": torch.zeros(1, 16, dtype=torch.long)},
    )
    for inputs, tokens in ((short, 4), (short, 4), (short, 4), (long, 4), (short, 8), (long, 4)):
        backend.generate(inputs, tokens, on_step=lambda: None)
    assert seen == [False, True, True, False, False, True]
    assert backend.compiled["skip_guard_eval"] is True
