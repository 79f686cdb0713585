"""One run: typed config -> pipeline -> record. Failures are recorded, never lost."""

from __future__ import annotations

import gc
import logging
import shlex
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from runner.config.load import to_container, to_run_config
from runner.config.run import RunConfig
from runner.console import print_summary
from runner.context import RunContext
from runner.devices import resolve_device
from runner.distributed.launch import needs_torchrun, run_tensor_parallel
from runner.errors import RunnerError
from runner.measure.derived import finish
from runner.measure.environment import environment
from runner.pipeline import run_pipeline
from runner.results import RESULTS_FILE, write_json_atomic

log = logging.getLogger(__name__)


def rerun_command(overrides: list[str]) -> str:
    return " ".join(["python -m runner", *(shlex.quote(o) for o in overrides)])


def new_record(cfg: Any, run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    container = to_container(cfg)
    return {
        "status": "running",
        "name": container.get("name"),
        "run_dir": str(run_dir),
        "started": datetime.now(UTC).isoformat(),
        "command": rerun_command(overrides),
        "replay": f"python -m runner --config-path {run_dir.resolve()}/.hydra --config-name config",
        "overrides": overrides,
        "config": container,
    }


def failure(error: BaseException) -> dict[str, str]:
    return {
        "type": type(error).__name__,
        "message": str(error) or type(error).__name__,
        "traceback": "".join(traceback.format_exception(error))[-4000:],
    }


def execute(
    cfg: Any, run_dir: Path, overrides: list[str], run_cfg: RunConfig | None = None, record_path: Path | None = None
) -> dict[str, Any]:
    """Run one job and return its record; the record is on disk whether the job succeeded or failed. `run_cfg`:
    `cfg` already typed and validated by the caller, so that the checks do not run twice. `record_path`: where the
    record goes, if not `run_dir/results.json` (a tensor-parallel rank's is not a job of its own)."""
    record = new_record(cfg, run_dir, overrides)
    start = time.perf_counter()
    ctx = None
    try:
        if run_cfg is None:
            run_cfg = to_run_config(cfg)
        if needs_torchrun(run_cfg):  # hardware=tp: torchrun runs the job, one process per GPU; their records merged
            record.update(run_tensor_parallel(cfg, run_cfg, run_dir, record))
            return record
        if run_cfg.hardware.threads:
            torch.set_num_threads(run_cfg.hardware.threads)
        record["environment"] = environment()
        ctx = RunContext(cfg=run_cfg, run_dir=run_dir, device=resolve_device(run_cfg.hardware), record=record)
        record["device"] = str(ctx.device)
        run_pipeline(ctx)
        finish(record)  # implausible figures fail the run here instead of reaching a report
        record["status"] = "ok"
    except Exception as error:  # recorded with its reason; the caller decides whether to stop
        record["status"] = "failed"
        record["error"] = failure(error)
        if not isinstance(error, RunnerError):
            log.error("run failed: %s", record["error"]["traceback"])
    except KeyboardInterrupt:  # recorded as failed (so resume reruns it), then the interrupt goes on
        record["status"] = "failed"
        record["error"] = {"type": "Interrupted", "message": "interrupted (Ctrl-C) before the run finished"}
        raise
    finally:
        record["duration_s"] = time.perf_counter() - start
        record["finished"] = datetime.now(UTC).isoformat()
        try:
            write_json_atomic(record_path or run_dir / RESULTS_FILE, record)
        finally:
            release(ctx)
    return record


def release(ctx: RunContext | None) -> None:
    """Free the job's model before the next job of the process loads its own. A failed job's traceback holds its
    frames, and with them the model, in a reference cycle that only Python's cycle collector frees, at a time of
    its choosing: on a GPU, an in-process sweep's next job found 78 GiB still allocated and failed to load.
    Runs after the record is written, and never raises: after a sticky CUDA error even `empty_cache` fails."""
    try:
        if ctx is not None and ctx.backend is not None:
            ctx.backend.unload()
            ctx.backend, ctx.inputs = None, None
        if ctx is not None and ctx.cfg.convert.compile:  # compiled graphs and their CUDA-graph memory pools
            torch.compiler.reset()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception as error:  # the record is safe; the next job will meet the same device anyway
        log.warning("could not free the job's memory: %s", error)


def report(record: dict[str, Any]) -> None:
    print_summary(record)
