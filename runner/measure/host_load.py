"""What else the host did while a job measured: CPU cores busy in other processes over the measured window.

A decode step at batch 1 is paced by the host that launches it, and inductor's autotuning times its candidate
kernels on that host: a compile in another process (a study on the host's other GPU, say) can move a job's
figures. On the 2x H200 of 2026-11-29 the same decode jobs moved 4-10 % between sweeps run beside other work
(docs/benchmarks.md §6h). The record says how busy the host was, so a reader can tell a quiet run from a shared one.
"""

from __future__ import annotations

import psutil


class HostLoad:
    """System-wide and this process's CPU use between `start()` and `stop()` (psutil's counters, read twice)."""

    def start(self) -> None:
        self.process = psutil.Process()
        psutil.cpu_percent(interval=None)  # each call reports the use since the previous one
        self.process.cpu_percent(interval=None)

    def stop(self) -> dict:
        cpus = psutil.cpu_count() or 1
        busy = psutil.cpu_percent(interval=None) / 100 * cpus  # 0..cpus
        own = self.process.cpu_percent(interval=None) / 100  # this process's threads, in cores
        return {
            "cpus": cpus,
            "busy_cores": round(busy, 2),
            "this_process_cores": round(own, 2),
            # compile workers, other jobs, anything else on the host; never below zero (the two reads differ slightly)
            "other_cores": round(max(0.0, busy - own), 2),
        }
