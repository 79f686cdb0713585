"""What else the host did while a job measured: CPU cores busy in other processes over the measured window.

A decode step at batch 1 is paced by the host that launches it, and inductor's autotuning times its candidate
kernels on that host: a compile in another process (a study on the host's other GPU, say) can move a job's
figures. On the 2x H200 of 2026-11-29 the same decode jobs moved 4-10 % between sweeps run beside other work
(docs/benchmarks.md §6h). The record says how busy the host was, so a reader can tell a quiet run from a shared one.
Child processes of the job (inductor's compile workers, busy only if the job recompiles in the window) count as
other processes. A tensor-parallel job's ranks are merged into one figure (runner/distributed/merge.py).
"""

from __future__ import annotations

import time

import psutil


def _busy_seconds(times) -> float:
    """CPU seconds spent on anything but idling or waiting for I/O, summed over every core."""
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class HostLoad:
    """System-wide and this process's CPU time between `start()` and `stop()`, as cores busy on average."""

    def start(self) -> None:
        self.process = psutil.Process()
        self.wall = time.perf_counter()
        self.system = psutil.cpu_times()
        self.own = self.process.cpu_times()

    def stop(self) -> dict:
        wall = max(time.perf_counter() - self.wall, 1e-9)
        system, own = psutil.cpu_times(), self.process.cpu_times()
        busy = (_busy_seconds(system) - _busy_seconds(self.system)) / wall
        mine = (own.user + own.system - self.own.user - self.own.system) / wall  # this process's threads
        return {
            "cpus": psutil.cpu_count() or 1,
            "busy_cores": round(busy, 2),
            "this_process_cores": round(mine, 2),
            # never below zero: the kernel's counters tick at 100 Hz, so the two reads differ slightly
            "other_cores": round(max(0.0, busy - mine), 2),
        }
