"""The torchrun entry point of a hardware=tp job: every rank runs the job's whole pipeline on its shard of the
model and writes its record next to the others; runner/distributed/launch.py starts it and merges the records.

    python -m torch.distributed.run --nproc-per-node=N -m runner.distributed.worker RUN_DIR/ranks/job.json
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from runner.app import execute, failure, new_record
from runner.config.load import to_run_config
from runner.config.run import RunConfig
from runner.distributed.tp import rank_device
from runner.models.build import random_checkpoint
from runner.models.source import resolve_weights
from runner.results import write_json_atomic


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


def run_rank(spec: dict[str, Any], ranks_dir: Path) -> dict[str, Any]:
    config, overrides = spec["config"], spec["overrides"]
    rank = int(os.environ["RANK"])
    rank_dir, record_path = ranks_dir / f"rank{rank}", ranks_dir / f"rank{rank}.json"
    try:
        run_cfg = to_run_config(config)
        device = join_process_group(run_cfg)
        prepare_weights(run_cfg, device)
    except Exception as error:  # recorded like a failed job, so the parent can say which rank failed and why
        record = {**new_record(config, rank_dir, overrides), "status": "failed", "error": failure(error)}
        write_json_atomic(record_path, record)
        return record
    # not rank_dir/results.json: a sweep report counts every results.json as a job
    return execute(config, rank_dir, overrides, run_cfg=run_cfg, record_path=record_path)


def main(spec_path: str) -> int:
    rank = os.environ.get("RANK", "?")
    logging.basicConfig(
        level=logging.INFO, format=f"[%(asctime)s][rank {rank}][%(name)s][%(levelname)s] - %(message)s", force=True
    )
    spec_file = Path(spec_path)
    record = run_rank(json.loads(spec_file.read_text()), spec_file.parent)
    if record["status"] != "ok":
        # a failed rank leaves the others waiting in a collective: exit non-zero so that torchrun stops them
        logging.getLogger(__name__).error("rank %s failed: %s", rank, record["error"]["message"])
        return 1
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
