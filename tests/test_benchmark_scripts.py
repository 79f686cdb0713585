"""The benchmark scripts on the CPU: scripts/overhead.py (harness overhead) and scripts/decode_profile.py (where a
decode step's time goes) must keep running and comparing like with like. Their verdicts are GPU figures
(docs/benchmarks.md); nothing here asserts a timing."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from decode_profile import busy_us, device_work, top_kernels  # noqa: E402


@pytest.mark.parametrize("override", ["quant=int9", "+convert.compile_options.inductorr={a:1}"])
def test_a_benchmark_scripts_bad_override_exits_2_naming_it(override, capsys):
    from bench_context import run_config

    with pytest.raises(SystemExit) as exit_:
        run_config(["model=tiny-llama", "hardware=cpu", override])
    assert exit_.value.code == 2
    assert override.split("=")[0].lstrip("+").split(".")[-1] in capsys.readouterr().err


def test_decode_profiles_bad_counts_exit_2_naming_them():
    result = subprocess.run(
        [sys.executable, "scripts/decode_profile.py", "--kernels", "-1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--kernels >= 0" in result.stderr and result.stderr.rstrip().endswith("-1")


@pytest.mark.parametrize("args", [["--variants", "tirton"], ["--rounds", "0"]])
def test_the_pdl_probe_refuses_what_it_cannot_run_in_one_line(args):
    """Here (no GPU; in CI no Triton either) or with a bad argument: exit 2 with the reason, never a traceback."""
    result = subprocess.run(
        [sys.executable, "scripts/gpu/pdl_probe.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    wanted = "needs Triton" if importlib.util.find_spec("triton") is None else args[0]
    assert wanted in result.stderr


def script(*args: str) -> dict:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_overhead_benchmark_alternates_the_loops_on_the_same_work():
    out = script(
        "scripts/overhead.py", "--rounds", "2", "hardware=cpu", "model=tiny-llama",
        "scenario.sequence_length=32", "scenario.iterations=3", "scenario.warmup_runs=1",
    )  # fmt: skip
    order = [(b["round"], b["loop"]) for b in out["blocks"]]
    assert order == [(0, "hand"), (0, "runner"), (0, "hand_bare"), (1, "hand_bare"), (1, "runner"), (1, "hand")]
    assert out["calls_per_block"] == 3 and all(b["mean_ms"] > 0 for b in out["blocks"])
    assert out["device"] == "cpu" and all(b["sm_clock_mhz"] is None for b in out["blocks"])
    mean = {(b["round"], b["loop"]): b["mean_ms"] for b in out["blocks"]}
    assert out["runner_over_hand_per_round"] == pytest.approx([mean[r, "runner"] / mean[r, "hand"] for r in (0, 1)])
    assert out["hand_over_bare_per_round"] == pytest.approx([mean[r, "hand"] / mean[r, "hand_bare"] for r in (0, 1)])
    assert out["within_2_percent"] == (abs(out["overhead"]) <= 0.02)


def test_overhead_hand_loop_runs_inside_the_infer_stages_surroundings(monkeypatch):
    """The H200 run read the runner 6 % faster than the hand loop because only the runner's blocks ran inside the
    memory tracker's NVML sampler thread. The hand loop must run inside the same tracker as the infer stage."""
    import overhead

    from runner.stages import infer

    assert overhead.MemoryTracker is infer.MemoryTracker  # the infer stage's surroundings, not a look-alike
    events = []

    class Tracker:
        def __init__(self, devices):
            events.append(("tracker", devices))

        def start(self):
            events.append("start")

        def stop(self):
            events.append("stop")
            return {"nvml": {"devices": {"cuda:0": {"sm_clock_mhz": {"mean": 1980.0}}}}}

    def model(**inputs):
        events.append(("call", inputs))

    device = torch.device("cuda:0")
    backend = SimpleNamespace(model=model, devices=lambda: [device], inference_context=contextlib.nullcontext)
    ctx = SimpleNamespace(backend=backend, inputs={"input_ids": 1}, device=torch.device("cpu"))
    monkeypatch.setattr(overhead, "MemoryTracker", Tracker)
    times, clock = overhead.hand_block(ctx, 2)
    calls = [("call", {"input_ids": 1})] * 2
    assert events == [("tracker", [device]), "start", *calls, "stop"] and len(times) == 2
    ctx.device = device  # the clock is read from the tracker's report of the run's GPU
    assert overhead.sm_clock({"nvml": {"devices": {"cuda:0": {"sm_clock_mhz": {"mean": 1980.0}}}}}, ctx) == 1980.0


def test_gpu_busy_time_counts_overlapping_kernels_once():
    # two streams overlap in 5-8; a gap 12-20 is idle; a kernel inside another adds nothing
    assert busy_us([(0, 8), (5, 12), (20, 30), (22, 25)]) == 22
    assert busy_us([]) == 0


def _event(name, start, end, device="cuda", activity=None, annotation=False):
    kind = torch.autograd.DeviceType.CUDA if device == "cuda" else torch.autograd.DeviceType.CPU
    span = SimpleNamespace(start=start, end=end, elapsed_us=lambda: end - start)
    return SimpleNamespace(
        name=name, device_type=kind, time_range=span, activity_type=activity, is_user_annotation=annotation
    )


@pytest.mark.parametrize("named", [True, False])  # torch that names the activity, and torch that does not
def test_busy_time_is_kernels_copies_and_memsets_not_annotations_or_host_ops(named):
    def kind(activity):
        return activity if named else None

    events = [
        _event("gemv", 0, 400, activity=kind("kernel")),
        _event("Memcpy DtoH", 1000, 1010, activity=kind("gpu_memcpy")),
        # a compiled graph's span over its kernels and the idle gap between them: not busy time
        _event("## Call CompiledFxGraph ##", 0, 1010, activity=kind("gpu_user_annotation"), annotation=True),
        _event("aten::mm", 0, 2000, device="cpu", activity=kind("cpu_op")),
        _event("gemv", 500, 900, activity=kind("kernel")),
    ]
    work = device_work(events)
    assert work["busy_ms"] == pytest.approx(0.81)  # 400 + 400 + 10 us
    assert dict(work["kernels"]) == pytest.approx({"gemv": 0.8, "Memcpy DtoH": 0.01})
    assert dict(work["launches"]) == {"gemv": 2, "Memcpy DtoH": 1}


def test_top_kernels_are_per_decode_step_with_the_prompt_cancelled():
    # ms and launches over a whole run: 2 gemv launches a step (e.g. two matrices of a layer), 1 argmax
    short = {"kernels": {"gemv": 10.0, "prefill_gemm": 5.0}, "launches": {"gemv": 8, "prefill_gemm": 3}}
    long = {
        "kernels": {"gemv": 30.0, "prefill_gemm": 5.0, "argmax": 1.0},
        "launches": {"gemv": 28, "prefill_gemm": 3, "argmax": 10},
    }
    top = top_kernels(short, long, steps=10)
    assert top[:2] == [
        {"name": "gemv", "ms_per_step": 2.0, "launches_per_step": 2.0, "us_per_launch": 1000.0},
        {"name": "argmax", "ms_per_step": 0.1, "launches_per_step": 1.0, "us_per_launch": 100.0},
    ]
    assert top[2]["ms_per_step"] == 0.0  # the prefill's kernel costs nothing per decode step
    assert top[2]["us_per_launch"] is None
    assert [k["name"] for k in top_kernels(short, long, steps=10, count=1)] == ["gemv"]
    assert len(top_kernels(short, long, steps=10, count=0)) == 3  # --kernels 0: every kernel


@pytest.mark.slow
def test_decode_profile_takes_one_step_from_two_runs():
    out = script(
        "scripts/decode_profile.py", "--short", "2", "--long", "6", "hardware=cpu", "model=tiny-llama",
        "convert.compile=false", "scenario.sequence_length=16",
    )  # fmt: skip
    assert out["new_tokens"] == {"short": 2, "long": 6, "wall_time_repeats": 3} and out["device"] == "cpu"
    step = out["per_decode_step"]
    assert step["bytes"] > 0
    # a timing difference of 4 tokens on a shared CPU can come out at or below zero: then no rate, and a warning
    if step["wall_ms"] > 0:
        assert step["achieved_gbs"] == pytest.approx(step["bytes"] / step["wall_ms"] / 1e6)
    else:
        assert "achieved_gbs" not in step and "raise --long or --repeats" in step["warning"]
    assert "gpu_busy_ms" not in step and out["note"] == "no GPU: wall time only"
    assert out["top_kernels_per_step"] is None
    # each part of generate's loop was timed (the model call uncompiled here), beside the whole loop and the rest
    host = step["host_per_step_ms"]
    parts = ["prepare_inputs", "model_call", "logits_processors", "update_model_kwargs", "stopping_criteria"]
    assert {*parts, "whole loop", "rest of the loop"} <= set(host) and any(k.startswith("stop_check") for k in host)


def test_decode_profile_puts_back_what_it_timed():
    from decode_profile import host_parts, timing
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, vocab_size=64)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    model._compiled_call = compiled = object()  # what transformers' get_compiled_call leaves on the model
    parts = host_parts(model)
    before = {name: getattr(owner, attribute) for name, (owner, attribute) in parts.items()}
    spent: dict = __import__("collections").defaultdict(float)
    with timing(parts, spent):
        ids = torch.tensor([[1, 2, 3]])
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert spent["prepare_inputs"] > 0 and spent["logits_processors"] > 0
    assert {name: getattr(owner, attribute) for name, (owner, attribute) in parts.items()} == before
    assert model._compiled_call is compiled and "prepare_inputs_for_generation" not in vars(model)


def h200_page(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "scripts/gpu/h200_page.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_h200_page_plans_every_study_with_a_limit_and_commands_that_compose(tmp_path):
    from omegaconf import OmegaConf

    from tests.conftest import CONF, compose_config

    result = h200_page("--dry-run", str(tmp_path / "out"), env={"WORK": str(tmp_path / "work")})
    assert result.returncode == 0, result.stderr
    plan, study = {}, None
    for line in result.stdout.splitlines():
        if line.startswith("== "):
            study = line.split()[1]
            limit = int(line.split("limit=")[1].split("s ")[0])
            plan[study] = {"limit": limit, "commands": []}
        else:
            plan[study]["commands"].append(line)
    assert list(plan) == [
        "padding",
        "seed",
        "combinations",
        "overhead",
        "overhead_gpu",
        "pytest_gpu",
        "measure",
        "decode_int4",
        "decode_fp8",
        "batch_bf16",
        "batch_int4",
        "batch_fp8",
        "quality",
        "quality_minilm",
        "int8wo",
        "decode_attention",
        "gemv",
        "falcon_generate",
        "ort",
        "pytest_rerun",
        "attention_llama",
        "attention_falcon",
        "attention_llama_fa4_flex",
        "attention_llama_sdpa_backends",
        "attention_falcon_fused",
        "attention_falcon_sdpa_backends",
        "attention_llama_flex16",
        "decode_fused",
        "compile_decode",
        "decode_fp8_ro",
        "pytest_fused",
        "decode_fused_modes",
        "gemlite",
        "pytest_gemlite",
        "quality_gemlite",
        "batch_gemlite",
        "gemlite_hunt",
        "gemv_fbgemm",
        "gemv_triton",
        "decode_triton",
        "pytest_triton",
        "batch_triton",
        "quality_triton",
        "host_loop",
        "bf16_kernels",
    ]
    # each study fits one 600 s call of the device tool (all of them together take more than one session's 30 min)
    assert plan["overhead"]["limit"] <= 90 and max(p["limit"] for p in plan.values()) <= 600
    for name, p in plan.items():  # every output lands in the study's own folder
        assert all(str(tmp_path / "work" / name) in c for c in p["commands"]), p
    runs = [c.split() for p in plan.values() for c in p["commands"] if c.startswith("python3 -m runner ")]
    assert len(runs) == 31
    profiling = [*plan["int8wo"]["commands"], *plan["host_loop"]["commands"][1:], *plan["bf16_kernels"]["commands"][:1]]
    profiles = [c.split() for c in profiling]
    assert len(profiles) == 4
    for words in profiles:  # decode_profile's runner overrides compose too
        start = words.index("scripts/decode_profile.py") + 1
        compose_config(["model=llama", *[w for w in words[start:] if "=" in w and not w.startswith("--")]])
    for words in runs:  # each runner command composes: no misspelt key or option (a sweep's first value)
        words = [w.strip("'").split(",")[0] for w in words]
        overrides = [w for w in words[3:] if w != "-m" and not w.startswith("hydra.")]
        experiment = next((w.split("=")[1] for w in overrides if w.startswith("experiment=")), None)
        if experiment:  # the sweep's first job, the command line's own overrides last (as Hydra's sweeper does)
            params = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
            overrides = [f"{k}={str(v).split(',')[0]}" for k, v in params.items()] + overrides
        compose_config(overrides)


def test_h200_page_batch_studies_take_their_mode_scheme_and_batches_from_the_environment(tmp_path):
    from tests.conftest import compose_config

    env = {"WORK": str(tmp_path), "FP8": "fp8wo", "COMPILE_MODE": "reduce-overhead", "BATCHES": "16,64"}
    result = h200_page("--dry-run", str(tmp_path / "out"), "batch_fp8", "batch_int4", env=env)
    assert result.returncode == 0, result.stderr
    runs = [line.split() for line in result.stdout.splitlines() if line.startswith("python3 -m runner ")]
    assert len(runs) == 2
    for words in runs:
        overrides = [w.strip("'").split(",")[0] for w in words[4:] if not w.startswith("hydra.")]
        assert "convert.compile_options.mode=reduce-overhead" in overrides and "scenario.batch_size=16" in overrides
        cfg = compose_config(overrides)
        assert cfg.convert.compile_options.mode == "reduce-overhead" and cfg.scenario.batch_size == 16
    assert "quant=fp8wo" in runs[0]


def test_h200_page_refuses_an_unknown_study(tmp_path):
    result = h200_page("--dry-run", str(tmp_path), "padding", "paddding")
    assert result.returncode == 2 and "unknown study 'paddding'" in result.stderr


def test_h200_page_packs_each_study_flat_and_without_model_files(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    job = work / "seed" / "sweep" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / "results.json").write_text("{}")
    (job / ".hydra" / "config.yaml").write_text("a: 1")
    (job / "model.safetensors").write_bytes(b"0" * 1024)
    (work / "overhead").mkdir()
    (work / "overhead" / "overhead.json").write_text("{}")
    result = h200_page("--pack-only", str(out), "seed", "overhead", "padding", env={"WORK": str(work)})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["overhead.tgz", "seed.tgz"]  # nothing for a study not run
    with tarfile.open(out / "seed.tgz") as archive:
        names = archive.getnames()
    assert "seed/sweep/0/results.json" in names and "seed/sweep/0/.hydra/config.yaml" in names
    assert not any(n.endswith(".safetensors") for n in names)


def test_gemv_probe_formats_hold_the_weights_they_claim():
    """scripts/gpu/gemv_probe.py: the int4 layout packs two 4-bit values per byte and unpacks them in order, each
    weight lands within about half a quantization step, and the compiled products match the float result (CPU run)."""
    sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
    import gemv_probe

    torch.manual_seed(0)
    weight = torch.randn(64, 256, dtype=torch.bfloat16)
    int4 = gemv_probe.PackedInt4Tensor.from_hp(weight, 128)  # the runner's layout, which the probe times
    packed, scale, low = int4.packed, int4.scale, int4.zero
    assert packed.dtype == torch.uint8 and packed.shape == (64, 128)  # half a byte per weight
    restored = gemv_probe.unpack(packed, scale, low, 128).float()
    step = scale.float().repeat_interleave(128, dim=1)
    # half a step, and bf16's rounding of the scale and zero point (a wrong nibble order is off by whole steps)
    assert ((restored - weight.float()).abs() <= 0.6 * step).all()
    q8, s8 = gemv_probe.quantize_int8(weight)
    assert q8.dtype == torch.int8 and s8.shape == (64,)
    x = torch.randn(1, 256, dtype=torch.bfloat16)
    reference = x.float() @ weight.float().t()
    run, ao_args = gemv_probe.torchao_layer(weight, "int8wo")  # torchao's own int8wo layer, as the runner compiles it
    assert ao_args[0] is None and {a.dtype for a in ao_args[1:]} >= {torch.int8}
    assert 64 * 256 <= gemv_probe.nbytes(ao_args) < 64 * 256 * 1.1  # a byte a weight, plus a scale (and zero) per row
    assert set(gemv_probe.formats(weight, 128, {})) <= set(gemv_probe.FORMATS)  # --formats accepts each of them
    run_fp8, fp8_args = gemv_probe.torchao_layer(weight, "fp8wo")  # the fp8 figure issue 12 asks for
    assert torch.float8_e4m3fn in {a.dtype for a in fp8_args[1:]}
    assert 64 * 256 <= gemv_probe.nbytes(fp8_args) < 64 * 256 * 1.1
    for fn, args, tolerance in (
        (gemv_probe.int8_gemv, (x, q8, s8), 0.02),
        (gemv_probe.make_int4_gemv(128), (x, packed, scale, low), 0.15),
        (gemv_probe.make_int4_split_gemv(128), (x, packed, scale, low), 0.15),
        (run, (x, *ao_args[1:]), 0.02),
        (run_fp8, (x, *fp8_args[1:]), 0.05),
    ):
        got = fn(*args).float()
        assert float((got - reference).norm() / reference.norm()) < tolerance


def test_gemv_probe_gives_each_call_a_weight_copy_of_its_own_up_to_the_calls():
    """--cold-bytes sets how many weight copies the timed calls cycle through (the JSON says how many): enough to
    exceed the bytes asked, at most one per call, since more would never be read."""
    from types import SimpleNamespace

    sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
    import gemv_probe

    weight = torch.randn(64, 256, dtype=torch.bfloat16)
    x = torch.randn(1, 256, dtype=torch.bfloat16)
    entry = (gemv_probe.bf16_gemv, (None, weight), weight.numel() * 2)  # 32 KiB of weights
    reference = x.float() @ weight.float().t()
    copies = {}
    for cold in (100_000, 10**9):
        args = SimpleNamespace(cold_bytes=cold, calls=5, rounds=1, bandwidth_gbs=4800.0)
        row = gemv_probe.measure(entry, x, reference, args, torch.device("cpu"))
        copies[cold] = row["weight_copies"]
        assert row["us"] > 0 and row["relative_error"] < 0.02
    assert copies == {100_000: 4, 10**9: 5}  # ceil(100000 / 32768); capped by the 5 calls


def test_per_gpu_plans_one_list_per_gpu_and_refuses_an_unknown_study(tmp_path):
    result = subprocess.run(
        ["bash", "scripts/gpu/per_gpu.sh", "--dry-run", str(tmp_path), "gemv,decode_int4", "decode_attention"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    plans = result.stdout.split("## GPU ")[1:]
    assert [p.splitlines()[0] for p in plans] == ["0: gemv decode_int4", "1: decode_attention"]
    assert f"{tmp_path}/work0/decode_int4" in plans[0] and f"{tmp_path}/work1/decode_attention" in plans[1]
    bad = subprocess.run(
        ["bash", "scripts/gpu/per_gpu.sh", str(tmp_path), "gemv", "decode_int4,nosuch"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown study 'nosuch'" in bad.stderr
    assert not (tmp_path / "tree").exists()  # nothing started


def test_per_gpu_runs_each_list_from_a_snapshot_of_the_checkout(tmp_path):
    """The studies run from OUT/tree, so a checkout replaced mid-run cannot pull files from under them; each GPU's
    archives land in OUT/gpuN. gemv fails fast without a GPU, which is all this needs."""
    result = subprocess.run(
        ["bash", "scripts/gpu/per_gpu.sh", str(tmp_path), "gemv"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={k: v for k, v in os.environ.items() if k != "OUT"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tree" / "runner" / "__init__.py").is_file() and not (tmp_path / "tree" / ".git").exists()
    assert "== gemv" in (tmp_path / "gpu0" / "h200_page.log").read_text()
    assert (tmp_path / "gpu0" / "gemv.tgz").is_file() and (tmp_path / "done").is_file()
    # the probe ran from the snapshot (its traceback names the file it ran), with the checkout's commit in the log
    assert f"{tmp_path}/tree/scripts/gpu/gemv_probe.py" in (tmp_path / "work0" / "gemv" / "console.log").read_text()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert f"commit {commit.stdout.strip() or 'unknown'}" in (tmp_path / "gpu0" / "h200_page.log").read_text()
