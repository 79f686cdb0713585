"""Peak memory of the measured work: torch's allocator on each GPU, the process RSS on the CPU."""

from __future__ import annotations

import resource
import sys

import psutil
import torch

MiB = 1024**2


def _rss_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


class MemoryTracker:
    """Reset peaks at `start()`, read them at `stop()`."""

    def __init__(self, devices: list[torch.device]) -> None:
        self.gpus = sorted({d.index or 0 for d in devices if d.type == "cuda"})

    def start(self) -> None:
        for index in self.gpus:
            torch.cuda.synchronize(index)
            torch.cuda.reset_peak_memory_stats(index)

    def stop(self) -> dict:
        report: dict = {
            "cpu_rss_bytes": psutil.Process().memory_info().rss,
            "cpu_rss_peak_bytes": _rss_peak_bytes(),
        }
        gpus = {}
        for index in self.gpus:
            torch.cuda.synchronize(index)
            gpus[f"cuda:{index}"] = {
                "peak_allocated_bytes": torch.cuda.max_memory_allocated(index),
                "peak_reserved_bytes": torch.cuda.max_memory_reserved(index),
            }
        if gpus:
            report["gpu"] = gpus
        return report
