"""One job in this process: typed config -> pipeline -> record. Failures are recorded, never lost.
The lowest job layer: runner/app.py decides where a job runs, and every way ends here (a spawned child, each
torchrun rank, or the launching process itself)."""

from __future__ import annotations

import gc
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from runner.context import RunContext
from runner.devices import resolve_device
from runner.errors import RunnerError
from runner.interrupts import interrupted
from runner.job import Job, failure
from runner.measure.derived import finish
from runner.measure.environment import environment
from runner.pipeline import run_pipeline
from runner.record import Record
from runner.record.io import write_record
from runner.results import RESULTS_FILE

log = logging.getLogger(__name__)


def execute(job: Job, record_path: Path | None = None) -> Record:
    """Run the job's pipeline here and return its record; the record is on disk whether the job succeeded or
    failed. `record_path`: where the record goes, if not `run_dir/results.json` (a tensor-parallel rank's)."""
    record = job.new_record()
    start = time.perf_counter()
    ctx = None
    try:
        if job.cfg is None:
            raise job.config_error
        if job.cfg.hardware.threads:
            torch.set_num_threads(job.cfg.hardware.threads)
        record.environment = environment()
        ctx = RunContext(cfg=job.cfg, run_dir=job.run_dir, device=resolve_device(job.cfg.hardware), record=record)
        record.device = str(ctx.device)
        run_pipeline(ctx)  # each stage assigns its own sections of `record`
        finish(record)  # implausible figures fail the run here instead of reaching a report
        record.status = "ok"
    except Exception as error:  # recorded with its reason (and what the stages recorded before it)
        record.status = "failed"
        record.error = failure(error)
        if not isinstance(error, RunnerError):
            log.error("run failed: %s", record.error.traceback)
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: recorded as failed (resume reruns it), then on
        record.status, record.error = "failed", interrupted(interrupt)
        raise
    finally:
        record.duration_s = time.perf_counter() - start
        record.finished = datetime.now(UTC).isoformat()
        try:
            write_record(record_path or job.run_dir / RESULTS_FILE, record)
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
