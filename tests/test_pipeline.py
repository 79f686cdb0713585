"""Stages are plugins found by name; the pipeline runs them in order; save writes only when asked."""

from __future__ import annotations

import weakref
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import pytest
import torch
from transformers import AutoModelForCausalLM

from runner.config.load import to_run_config
from runner.context import RunContext
from runner.record import Record
from runner.stages import STAGES, Stage
from tests.conftest import compose_config


def test_every_stage_is_registered():
    assert {"load", "convert", "warmup", "infer", "compare", "reverse", "save"} <= set(STAGES.names())


def test_pipeline_order_is_configurable(run_job):
    record = run_job("pipeline=load_only")
    assert record["status"] == "ok", record.get("error")
    assert record["stages"] == ["load", "convert", "reverse", "save"]
    assert "measurements" not in record and record["model"]["footprint_bytes"] > 0


def test_save_writes_a_checkpoint_only_when_asked(run_job, tmp_path):
    record = run_job()
    assert record["save"] == {"saved": False}
    record = run_job("save.model=true")
    assert record["save"]["saved"] is True
    reloaded = AutoModelForCausalLM.from_pretrained(record["save"]["directory"])
    assert reloaded.config.hidden_size == 64


def test_the_profiling_probe_runs_after_the_measured_calls(run_job):
    """The attention probe uses torch.profiler; it must not run before `infer` and touch the measurements."""
    record = run_job("attention=sdpa")
    stages = record["stages"]
    assert stages.index("verify") > stages.index("infer")
    assert record["attention"]["sdpa_kernels"]  # and it still records what ran


def test_a_failed_job_frees_its_model_before_the_next_job_loads(run_job, monkeypatch):
    """A failure mid-run (here: an out-of-memory error in the measured calls) leaves a traceback whose frames hold
    the model in a reference cycle; in an in-process sweep on a GPU the next job then lacked that memory. The model
    must be gone when execute() returns, without waiting for Python's cycle collector."""
    from runner.backends.pytorch.backend import PyTorchBackend
    from runner.stages.infer import Infer

    models = []
    load = PyTorchBackend.load

    def load_and_watch(self):
        info = load(self)
        models.append(weakref.ref(self.model))
        return info

    def out_of_memory(self, ctx):
        model = ctx.backend.model  # noqa: F841  (a frame holding the model, as a failing forward pass does)
        raise RuntimeError("CUDA out of memory. Tried to allocate 4.00 GiB")

    monkeypatch.setattr(PyTorchBackend, "load", load_and_watch)
    monkeypatch.setattr(Infer, "run", out_of_memory)
    record = run_job()
    assert record["status"] == "failed" and "out of memory" in record["error"]["message"]
    assert models and models[0]() is None


def _context(stages: list[str]) -> RunContext:
    cfg = SimpleNamespace(pipeline=SimpleNamespace(stages=stages))
    return RunContext(cfg=cfg, run_dir=Path("."), device=torch.device("cpu"), record=Record(), backend=object())


def test_the_pipeline_reverses_conversions_once_newest_first_before_a_stage_that_needs_the_unconverted_model():
    from runner.pipeline import run_pipeline

    undone, seen_by_save = [], []

    class Converts(Stage):
        name = "a"

        def run(self, ctx):
            return ctx

        def reverse(self, ctx):
            undone.append(self.name)

    class Later(Converts):
        name = "b"

    class NeedsUnconverted(Stage):
        name = "c"
        needs_unconverted_model = True

        def run(self, ctx):
            seen_by_save.append(list(undone))
            return ctx

    class Fails(Stage):
        name = "d"

        def run(self, ctx):
            raise RuntimeError("boom")

    plugins = {"a": Converts, "b": Later, "c": NeedsUnconverted, "d": Fails}
    ctx = _context(list(plugins))
    with patch.object(STAGES, "get", plugins.__getitem__), pytest.raises(RuntimeError, match="boom"):
        run_pipeline(ctx)
    assert seen_by_save == [["b", "a"]]  # reversed before the stage, newest first
    assert undone == ["b", "a"]  # and not again after the failure


def test_a_failure_before_any_reversing_stage_still_reverses():
    from runner.pipeline import run_pipeline

    undone = []

    class Converts(Stage):
        name = "a"

        def run(self, ctx):
            return ctx

        def reverse(self, ctx):
            undone.append(self.name)

    class Fails(Stage):
        name = "d"

        def run(self, ctx):
            raise RuntimeError("boom")

    ctx = _context(["a", "d"])
    with patch.object(STAGES, "get", {"a": Converts, "d": Fails}.__getitem__), pytest.raises(RuntimeError):
        run_pipeline(ctx)
    assert undone == ["a"]


def test_consecutive_stages_share_one_reference_model_freed_before_any_other_stage(monkeypatch, tmp_path):
    """compare and quality each ran the reference model: one job loaded it twice. Now it loads once for the stages
    that use it in a row, and is gone before a stage that does not (never in memory during measured calls)."""
    from runner.backends.pytorch.backend import PyTorchBackend
    from runner.pipeline import run_pipeline
    from runner.stages.compare import Compare
    from runner.stages.quality import Quality

    assert Compare.uses_reference and Quality.uses_reference
    events = []
    monkeypatch.setattr(PyTorchBackend, "load", lambda self: events.append("load"))
    monkeypatch.setattr(PyTorchBackend, "unload", lambda self: events.append("unload"))

    class UsesReference(Stage):
        name = "uses_reference"
        uses_reference = True

        def run(self, ctx):
            events.append(id(ctx.reference()))
            return ctx

    class Other(Stage):
        name = "other"

        def run(self, ctx):
            events.append("other")
            return ctx

    plugins = {"a": UsesReference, "b": UsesReference, "c": Other, "d": UsesReference}
    cfg = to_run_config(compose_config(["hardware=cpu", "quant=none"]))
    cfg.pipeline.stages = list(plugins)
    ctx = RunContext(cfg=cfg, run_dir=tmp_path, device=torch.device("cpu"))
    with patch.object(STAGES, "get", plugins.__getitem__):
        run_pipeline(ctx)
    first, second = events[1], events[2]
    assert first == second  # a and b ran the same reference model
    assert events == ["load", first, second, "unload", "other", "load", events[6], "unload"]
