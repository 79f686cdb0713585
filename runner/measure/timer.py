"""One clock for every backend: device work is bracketed by marks on the stream that does the work.

On GPUs a mark is a CUDA event recorded on the current stream of every GPU the model runs on (one GPU: one
event); nothing waits for the device when a mark is taken, so a per-token mark costs no host synchronize.
`seconds(a, b)` is read after the measured call: it waits for the end events, and gives the longest span any
of the GPUs took between the two marks (events of different GPUs cannot be compared with each other; the GPU
that finishes last decides the wall time). ONNX Runtime runs its CUDA provider on torch's current stream (its
`user_compute_stream` option), so the same events bracket its work. On the CPU a mark is a `perf_counter`
reading: the work is done when the call returns.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


class DeviceClock:
    def __init__(self, devices: torch.device | list[torch.device]) -> None:
        devices = [devices] if isinstance(devices, torch.device) else list(devices)
        self.gpus = list(dict.fromkeys(d for d in devices if d.type == "cuda"))
        self.cuda = bool(self.gpus)
        self.device = self.gpus[0] if self.gpus else devices[0]

    def mark(self):
        if not self.cuda:
            return time.perf_counter()
        events = []
        for gpu in self.gpus:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(gpu))
            events.append(event)
        return events

    def seconds(self, start, end) -> float:
        if not self.cuda:
            return end - start
        spans = []
        for first, last in zip(start, end, strict=True):
            last.synchronize()
            spans.append(first.elapsed_time(last))
        return max(spans) / 1000.0

    def synchronize(self) -> None:
        for gpu in self.gpus:
            torch.cuda.synchronize(gpu)


def replayed_seconds(run: Callable[[], object], rounds: int, device: torch.device, repeats: int = 1) -> float:
    """Median seconds of one call of `run` over `rounds` rounds of `repeats` calls, on a DeviceClock. On a GPU `run`
    is captured once as a CUDA graph and the graph is replayed: the probes' kernels take microseconds, less than
    launching them from Python, and a plain loop times the launches. `run` is called three times first (compiling,
    autotuning, lazy allocations). For kernel probes (scripts/gpu/); jobs are timed by the measure stage."""
    clock = DeviceClock(device)
    for _ in range(3):
        run()
    if clock.cuda:
        clock.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
        run = graph.replay
        run()
    times = []
    for _ in range(rounds):
        start = clock.mark()
        for _ in range(repeats):
            run()
        times.append(clock.seconds(start, clock.mark()) / repeats)
    return statistics.median(times)


def replayed_candidates(
    candidates, run_for: Callable[[object], Callable[[], object]], rounds: int, device: torch.device, repeats: int = 1,
    on_error: Callable[[object, Exception], None] | None = None,
) -> dict:  # fmt: skip
    """{candidate: replayed_seconds of run_for(candidate)} for the probes' config searches (scripts/gpu/). A candidate
    whose run raises (a kernel config that does not compile: registers, shared memory) is left out and passed to
    `on_error`."""
    timings = {}
    for candidate in candidates:
        try:
            timings[candidate] = replayed_seconds(run_for(candidate), rounds, device, repeats)
        except Exception as error:
            if on_error is None:
                raise
            on_error(candidate, error)
    return timings
