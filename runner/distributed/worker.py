"""The torchrun entry point of a hardware=tp job: every rank runs the job's whole pipeline on its shard of the
model and writes its record next to the others; runner/distributed/launch.py starts it and merges the records.

    python -m torch.distributed.run --nproc-per-node=N -m runner.distributed.worker RUN_DIR/ranks/job.pkl
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from runner.config.run import RunConfig
from runner.distributed.tp import rank_device
from runner.execute import execute
from runner.job import Job, failure
from runner.models.build import random_checkpoint
from runner.models.source import resolve_weights
from runner.record import Record
from runner.record.io import write_record


def join_process_group(run_cfg: RunConfig) -> torch.device:
    device = rank_device(run_cfg.hardware)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return device


def prepare_weights(run_cfg: RunConfig, device: torch.device) -> None:
    """Tensor-parallel loading goes through from_pretrained, so random weights need a checkpoint: rank 0 writes it
    once (runner/models/build.py caches it), the others wait instead of racing to write the same folder."""
    if dist.get_rank() == 0 and resolve_weights(run_cfg.model).kind == "random":
        random_checkpoint(run_cfg.model, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the full model was built on this GPU: give the memory back before loading
    dist.barrier()


def run_rank(job: Job, ranks_dir: Path) -> Record:
    rank = int(os.environ["RANK"])
    rank_job, record_path = job.for_rank(rank), ranks_dir / f"rank{rank}.json"
    try:
        device = join_process_group(job.cfg)
        prepare_weights(job.cfg, device)
    except Exception as error:  # recorded like a failed job, so the parent can say which rank failed and why
        record = rank_job.new_record()
        record.status, record.error = "failed", failure(error)
        write_record(record_path, record)
        return record
    # not rank_dir/results.json: a sweep report counts every results.json as a job
    return execute(rank_job, record_path=record_path)


def main(spec_path: str) -> int:
    rank = os.environ.get("RANK", "?")
    logging.basicConfig(
        level=logging.INFO, format=f"[%(asctime)s][rank {rank}][%(name)s][%(levelname)s] - %(message)s", force=True
    )
    spec_file = Path(spec_path)
    record = run_rank(pickle.loads(spec_file.read_bytes()), spec_file.parent)
    if not record.ok:
        # a failed rank leaves the others waiting in a collective: exit non-zero so that torchrun stops them
        logging.getLogger(__name__).error("rank %s failed: %s", rank, record.error.message)
        return 1
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
