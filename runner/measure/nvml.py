"""GPU memory, energy, clocks and utilization as the driver sees them (NVML, from nvidia-ml-py).

torch's allocator counts only its own tensors; NVML also sees the CUDA context, cuBLAS workspaces and other
libraries' allocations, and it reads the GPU's own energy counter. The SM clock says whether the GPU ran at full
speed: under sustained load a power- or heat-limited GPU lowers it, and every kernel slows by as much; the memory
clock does the same for memory-bound work (batch-1 decode). The GPU's own utilization (the share of each sampling
period in which a kernel ran) tells a job that waited for its host (low) from one whose kernels were slow (high):
the same settings decoded 1.4-2.1x slower in a few jobs of the H200 studies (docs/benchmarks.md §6o). The host's
other GPUs are watched too (their utilization and compute processes): a study running on one of them shares the
host with this job (docs/benchmarks.md §6h). Nothing here raises: where NVML is missing (a CPU host, a container
without the driver) the report says why and carries no figures.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import torch

_STATE: dict[str, Any] = {}


def nvml():
    """The initialized pynvml module, or raise RuntimeError with the reason NVML cannot be used."""
    if "module" not in _STATE:
        try:
            import pynvml

            pynvml.nvmlInit()
            _STATE["module"] = pynvml
        except Exception as error:  # ImportError, NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
            _STATE["module"] = None
            _STATE["reason"] = f"NVML unavailable: {type(error).__name__}: {error}"
    if _STATE["module"] is None:
        raise RuntimeError(_STATE["reason"])
    return _STATE["module"]


def handle_for(cuda_index: int):
    """The NVML handle of torch's cuda:<index>, which CUDA_VISIBLE_DEVICES may renumber: matched by UUID."""
    pynvml = nvml()
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{torch.cuda.get_device_properties(cuda_index).uuid}")
    except Exception:  # older torch without .uuid, or a MIG slice: torch's own mapping, then the plain index
        try:
            index = torch.cuda._get_nvml_device_index(cuda_index)
        except Exception:
            index = cuda_index
        return pynvml.nvmlDeviceGetHandleByIndex(index)


def _process_used_bytes(pynvml, handle, pid: int) -> int | None:
    for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
        if process.pid == pid and process.usedGpuMemory is not None:
            return int(process.usedGpuMemory)
    return None


def _query(read: Callable[[], Any]) -> Any:
    """One NVML query, or None where the driver does not answer it (NotSupported on some virtualized GPUs, energy
    before Volta, a device that went away, ...)."""
    try:
        return read()
    except Exception:
        return None


def _sm_clock_mhz(pynvml, handle) -> int | None:
    return _query(lambda: int(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)))


def _mem_clock_mhz(pynvml, handle) -> int | None:
    return _query(lambda: int(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM)))


def _sampled_summary(samples: list[int]) -> dict | None:
    if not samples:
        return None
    return {"mean": sum(samples) / len(samples), "min": min(samples), "max": max(samples), "samples": len(samples)}


def _uuid(pynvml, handle) -> str | None:
    def read() -> str:
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        return uuid.decode() if isinstance(uuid, bytes) else str(uuid)

    return _query(read)


def _other_gpus(pynvml, own: list[Any]) -> dict[str, Any]:
    """NVML's devices that this job does not use, as "nvml:<index>" -> handle; {} where NVML cannot say."""
    try:
        mine = {_uuid(pynvml, h) for h in own}
        handles = {f"nvml:{i}": pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())}
    except Exception:
        return {}
    if None in mine:  # this job's own GPUs cannot be told apart from the rest
        return {}
    return {name: h for name, h in handles.items() if _uuid(pynvml, h) not in mine}


def _nvml_index(pynvml, handle) -> int | None:
    return _query(lambda: int(pynvml.nvmlDeviceGetIndex(handle)))


def _utilization(pynvml, handle) -> int | None:
    return _query(lambda: int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))  # % of the last period a kernel ran


def _compute_processes(pynvml, handle) -> int | None:
    return _query(lambda: len(pynvml.nvmlDeviceGetComputeRunningProcesses(handle)))


def _energy_mj(pynvml, handle) -> int | None:
    return _query(lambda: int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)))  # mJ since the driver loaded


# The sampler thread runs inside the measured window and takes the GIL from the host loop that launches kernels:
# on a host-bound decode every sample is time the loop waits. A sample is five NVML reads and a max, plus one read
# per other GPU of the host (about 0.1 ms on one GPU); at 10 samples a second that is about 0.1 % of the host's
# time (scripts/nvml_cost.py measures it, on against off). Energy comes from the driver's counter read at start
# and stop, so it needs no samples at all.
DEFAULT_INTERVAL_S = 0.1


class NvmlMonitor:
    """Peak used memory (this process, and the whole device), the SM and memory clocks and the GPU's utilization,
    sampled in a background thread between `start()` and `stop()`, and the energy the GPUs drew in that window."""

    def __init__(self, cuda_indices: list[int], interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.cuda_indices = cuda_indices
        self.interval_s = interval_s
        self.pid = os.getpid()
        self.handles: dict[int, Any] = {}
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self.handles = {i: handle_for(i) for i in cuda_indices}
        except Exception as error:
            self.reason = str(error)

    @property
    def available(self) -> bool:
        return bool(self.handles)

    def _sample(self) -> None:
        pynvml = self._pynvml
        for index, handle in self.handles.items():
            peaks = self.peaks[index]
            # each read on its own: a driver without the per-process query still gives the device figure
            try:
                peaks["device"] = max(peaks["device"], int(pynvml.nvmlDeviceGetMemoryInfo(handle).used))
            except Exception:  # a failed read is skipped, the next sample tries again
                pass
            try:
                own = _process_used_bytes(pynvml, handle, self.pid)
            except Exception:
                own = None
            if own is not None:
                peaks["process"] = max(peaks["process"] or 0, own)
            reads = ((self.clocks, _sm_clock_mhz), (self.mem_clocks, _mem_clock_mhz), (self.busy, _utilization))
            for samples, read in reads:
                if (value := read(pynvml, handle)) is not None:
                    samples[index].append(value)
        for name, handle in self.others.items():  # one read per other GPU
            if (busy := _utilization(pynvml, handle)) is not None:
                self.other_busy[name].append(busy)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> None:
        if not self.available:
            return
        pynvml = self._pynvml = nvml()  # looked up once, not per sample
        self.peaks = {i: {"device": 0, "process": None} for i in self.handles}
        self.clocks: dict[int, list[int]] = {i: [] for i in self.handles}
        self.mem_clocks: dict[int, list[int]] = {i: [] for i in self.handles}
        self.busy: dict[int, list[int]] = {i: [] for i in self.handles}
        self.energy_start = {i: _energy_mj(pynvml, h) for i, h in self.handles.items()}
        self.others = _other_gpus(pynvml, list(self.handles.values()))
        self.other_busy: dict[str, list[int]] = {name: [] for name in self.others}
        self.other_processes = {name: _compute_processes(pynvml, h) for name, h in self.others.items()}
        self._sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict:
        if not self.available:
            return {"available": False, "reason": self.reason}
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        pynvml = nvml()
        devices = {}
        for index, handle in self.handles.items():
            start, end = self.energy_start[index], _energy_mj(pynvml, handle)
            process = self.peaks[index]["process"]
            devices[f"cuda:{index}"] = {
                "nvml_index": _nvml_index(pynvml, handle),  # how other_gpus names it in other processes' records
                "process_used_peak_bytes": process,
                "process_used_note": None
                if process is not None
                else "NVML lists no process with this pid (a container's PID namespace hides it); "
                "use device_used_peak_bytes, which counts every process on the GPU",
                "device_used_peak_bytes": self.peaks[index]["device"],
                "device_total_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                "energy_joules": None if start is None or end is None else (end - start) / 1000.0,
                "sm_clock_mhz": _sampled_summary(self.clocks[index]),  # None: the driver does not report it
                "mem_clock_mhz": _sampled_summary(self.mem_clocks[index]),
                "utilization_percent": _sampled_summary(self.busy[index]),  # share of each period a kernel ran
            }
        other_gpus = {}
        for name, handle in self.others.items():
            busy, processes = self.other_busy[name], [self.other_processes[name], _compute_processes(pynvml, handle)]
            known = [p for p in processes if p is not None]
            other_gpus[name] = {
                "utilization_percent_mean": sum(busy) / len(busy) if busy else None,
                "utilization_percent_max": max(busy) if busy else None,
                "compute_processes_max": max(known) if known else None,  # at start and stop
            }
        return {
            "available": True,
            "sampling_interval_s": self.interval_s,
            "devices": devices,
            # {}: no GPU besides this job's, or none that NVML shows or can tell apart from this job's
            "other_gpus": other_gpus,
        }
