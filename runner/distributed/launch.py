"""A hardware=tp job under torchrun: one process per GPU, each running the whole pipeline on its shard of every
layer (runner/distributed/worker.py); this process then merges the ranks' records into the job's record."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from runner.distributed.merge import DistributedError, merge_ranks, rank_file
from runner.distributed.tp import enabled, is_rank, tp_size
from runner.interrupts import interrupted
from runner.job import Job, failure
from runner.process import die_with_parent
from runner.record import Record
from runner.record.io import write_record
from runner.results import RESULTS_FILE

log = logging.getLogger(__name__)

RANKS_DIR = "ranks"  # under the run folder: the job spec, each rank's record and the ranks' logs
SPEC_FILE = "job.pkl"  # the typed Job, pickled: the ranks do not type the config again
LOG_TAIL_LINES = 15
STOP_GRACE_S = 20.0  # interrupted: torchrun's time to stop its ranks before it is killed


def torchrun_command(nproc: int, spec: Path, log_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a rendezvous on a free local port: several tp jobs can run on one host
        f"--nproc-per-node={nproc}",
        f"--log-dir={log_dir}",
        "--tee=3",  # every rank's stdout and stderr into log_dir, and to the console...
        "--local-ranks-filter=0",  # ...rank 0's only, so the console is not doubled
        "-m",
        "runner.distributed.worker",
        str(spec),
    ]


def _log_tail(log_dir: Path) -> str:
    """The end of the first rank log that reports an error, for the record's error message."""
    for path in sorted(log_dir.rglob("stderr.log")):
        lines = path.read_text(errors="replace").splitlines()
        if any("Error" in line for line in lines):
            return f"\n{path}:\n" + "\n".join(lines[-LOG_TAIL_LINES:])
    return ""


def run_tensor_parallel(job: Job) -> Record:
    """Run the job on `hardware.num_gpus` ranks; write and return the merged record."""
    record, start = job.new_record(), time.perf_counter()
    try:
        record = _launch(job, record)
    except Exception as error:
        record.status, record.error = "failed", failure(error)
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: torchrun has stopped its ranks (_torchrun)
        record.status, record.error = "failed", interrupted(interrupt)
        _finish(job, record, start)
        raise
    return _finish(job, record, start)


def _finish(job: Job, record: Record, start: float) -> Record:
    record.duration_s = time.perf_counter() - start
    record.finished = datetime.now(UTC).isoformat()
    write_record(job.run_dir / RESULTS_FILE, record)
    return record


def _launch(job: Job, record: Record) -> Record:
    hardware = job.cfg.hardware
    nproc = tp_size(hardware)
    ranks_dir = job.run_dir / RANKS_DIR
    shutil.rmtree(ranks_dir, ignore_errors=True)  # records of an earlier attempt must not pass for this one's
    spec = ranks_dir / SPEC_FILE
    ranks_dir.mkdir(parents=True, exist_ok=True)
    spec.write_bytes(pickle.dumps(job))
    env = dict(os.environ)
    if hardware.tp_on_cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""  # transformers builds its device mesh on the accelerator it sees
    command = torchrun_command(nproc, spec, ranks_dir / "logs")
    log.info(
        "tensor parallel over %d %s: %s", nproc, "CPU processes" if hardware.tp_on_cpu else "GPUs", " ".join(command)
    )
    code = _torchrun(command, env)
    ranks = [rank_file(ranks_dir, rank) for rank in range(nproc)]
    if ranks[0] is None:
        raise DistributedError(
            f"torchrun exited with code {code} before rank 0 wrote its record; the ranks' logs are in "
            f"{ranks_dir / 'logs'}{_log_tail(ranks_dir / 'logs')}"
        )
    merged = merge_ranks(record, ranks, process_group="gloo" if hardware.tp_on_cpu else "nccl")
    if code and merged.status == "ok":
        merged.exit_note = f"torchrun exited with {code} after every rank wrote its record"
    return merged


def _torchrun(command: list[str], env: dict[str, str]) -> int:
    """torchrun's exit code. Interrupted (Ctrl-C, SIGTERM), torchrun gets SIGTERM and time to stop its ranks: they
    run in sessions of their own, so killing torchrun outright would leave them running."""
    process = subprocess.Popen(command, env=env, preexec_fn=die_with_parent)
    try:
        return process.wait()
    except BaseException:
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


def needs_torchrun(job: Job) -> bool:
    """A hardware=tp job outside torchrun: relaunch it there (inside, each rank runs the pipeline itself)."""
    return job.cfg is not None and enabled(job.cfg.hardware) and not is_rank()
