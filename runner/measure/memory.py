"""Peak memory of the measured work: torch's allocator and NVML on each GPU, the process RSS on the CPU; and,
beside it, how busy the host and the other GPUs were (host_load.py, nvml.py)."""

from __future__ import annotations

import re
import resource
import sys
from pathlib import Path

import psutil
import torch

from runner.measure.host_load import HostLoad
from runner.measure.nvml import NvmlMonitor

MiB = 1024**2
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _lifetime_rss_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark (Linux: writing 5 to clear_refs), so the peak covers only the
    measured calls and not model loading or an earlier job of the same process. False where unsupported."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _rss_high_water_bytes() -> int | None:
    try:
        match = re.search(r"^VmHWM:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


class MemoryTracker:
    """Reset peaks at `start()`, read them at `stop()`."""

    def __init__(self, devices: list[torch.device]) -> None:
        self.gpus = sorted({d.index or 0 for d in devices if d.type == "cuda"})
        self.nvml = NvmlMonitor(self.gpus) if self.gpus else None
        self.host = HostLoad()

    def start(self) -> None:
        for index in self.gpus:
            torch.cuda.synchronize(index)
            torch.cuda.reset_peak_memory_stats(index)
        self.rss_start = psutil.Process().memory_info().rss
        self.window = _reset_rss_peak() and _rss_high_water_bytes() is not None
        if self.nvml:
            self.nvml.start()
        self.host.start()

    def stop(self) -> dict:
        for index in self.gpus:
            torch.cuda.synchronize(index)
        report: dict = {
            "cpu_rss_bytes": psutil.Process().memory_info().rss,
            "cpu_rss_start_bytes": self.rss_start,
            "cpu_rss_peak_bytes": _rss_high_water_bytes() if self.window else _lifetime_rss_peak_bytes(),
            # a lifetime peak also counts loading and, in-process, earlier jobs: the record says which it is
            "cpu_rss_peak_scope": "measured calls" if self.window else "process lifetime",
            "host": self.host.stop(),
        }
        gpus = {}
        for index in self.gpus:
            gpus[f"cuda:{index}"] = {
                "peak_allocated_bytes": torch.cuda.max_memory_allocated(index),
                "peak_reserved_bytes": torch.cuda.max_memory_reserved(index),
            }
        if gpus:
            report["gpu"] = gpus
        if self.nvml:
            report["nvml"] = self.nvml.stop()
        return report
