"""Clocks that read the time only after the device has finished.

On a GPU, marks are CUDA events recorded in the stream and read after the last one completed; on the CPU,
marks are `perf_counter` readings. Either way `seconds(a, b)` is the wall time the device spent between two
marks.
"""

from __future__ import annotations

import time

import torch


class DeviceClock:
    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
            return event
        return time.perf_counter()

    def seconds(self, start, end) -> float:
        if self.cuda:
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        return end - start

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


class SyncClock(DeviceClock):
    """perf_counter read after the device has finished everything queued (ONNX Runtime runs on its own CUDA
    stream, which CUDA events recorded on torch's stream would not wait for)."""

    def mark(self) -> float:
        self.synchronize()
        return time.perf_counter()

    def seconds(self, start: float, end: float) -> float:
        return end - start


class MultiDeviceClock(SyncClock):
    """A model split over several GPUs: each mark waits for every one of them, then reads the host clock. An
    event on one GPU's stream would say nothing of the work still queued on the others."""

    def __init__(self, devices: list[torch.device]) -> None:
        self.gpus = [d for d in devices if d.type == "cuda"]
        super().__init__(self.gpus[0])

    def synchronize(self) -> None:
        for gpu in self.gpus:
            torch.cuda.synchronize(gpu)
