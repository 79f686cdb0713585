"""Self-checks of the instruments: the clock against a known sleep, the memory tracker against a known
allocation, per-token counts and units, and implausible measurements that fail the run."""

from __future__ import annotations

import copy
import mmap
import os
import time
from types import SimpleNamespace

import pytest
import torch

from runner.backends.pytorch.backend import PyTorchBackend
from runner.errors import MeasurementError
from runner.measure import nvml as nvml_module
from runner.measure.derived import check_plausible, energy
from runner.measure.memory import MemoryTracker
from runner.measure.nvml import NvmlMonitor
from runner.measure.stats import summarize
from runner.measure.timer import DeviceClock, replayed_candidates, replayed_seconds
from runner.record import Record
from runner.report.collect import flatten

MiB = 2**20


def test_cpu_clock_matches_a_known_sleep():
    clock = DeviceClock(torch.device("cpu"))
    readings = []
    for _ in range(3):
        start = clock.mark()
        time.sleep(0.05)
        readings.append(clock.seconds(start, clock.mark()))
    assert all(r >= 0.0499 for r in readings)  # sleep never returns early
    assert min(readings) < 0.07  # a busy 2-core host may add a little, not 40 %


@pytest.mark.gpu
def test_cuda_clock_agrees_with_a_synchronized_host_clock():
    device = torch.device("cuda:0")
    clock = DeviceClock(device)
    a = torch.randn(4096, 4096, device=device)
    a @ a  # warm up cuBLAS
    torch.cuda.synchronize()
    host_start = time.perf_counter()
    start = clock.mark()
    for _ in range(50):
        a @ a
    end = clock.mark()
    torch.cuda.synchronize()
    host = time.perf_counter() - host_start
    measured = clock.seconds(start, end)
    assert 0 < measured <= host * 1.01 + 1e-4
    assert measured > host * 0.8  # the events bracket the work, not just the launches


@pytest.mark.gpu
def test_clock_over_two_gpus_takes_the_gpu_that_finishes_last():
    """A split model's marks: an event on each GPU, no synchronize per mark; the span is the slower GPU's."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    gpus = [torch.device("cuda:0"), torch.device("cuda:1")]
    clock = DeviceClock(gpus)
    a = torch.randn(4096, 4096, device=gpus[1])
    a @ a
    clock.synchronize()
    host_start = time.perf_counter()
    start = clock.mark()
    for _ in range(50):  # work on the second GPU only: an event on the first alone would see none of it
        a @ a
    end = clock.mark()
    clock.synchronize()
    host = time.perf_counter() - host_start
    assert host * 0.8 < clock.seconds(start, end) <= host * 1.01 + 1e-4


def test_memory_tracker_sees_a_known_allocation():
    # Fresh pages from the kernel, every one written. A tensor is not enough: once earlier tests have freed
    # heap memory, glibc can place a 200 MB tensor in pages that are still resident, and RSS rightly does not
    # grow (CI saw +6 MiB for a 191 MiB tensor; reproduced by freeing 300 heap tensors first).
    size = 200_000_000
    tracker = MemoryTracker([torch.device("cpu")])
    tracker.start()
    block = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        block[offset] = 1
    block.close()
    report = tracker.stop()
    assert report["cpu_rss_peak_scope"] == "measured calls"  # the peak was reset at start(), not a lifetime peak
    grew = (report["cpu_rss_peak_bytes"] - report["cpu_rss_start_bytes"]) / MiB
    assert 185 <= grew <= 260, f"RSS peak grew by {grew:.0f} MiB for a 191 MiB mapping"
    assert "gpu" not in report and "nvml" not in report


@pytest.mark.gpu
def test_gpu_memory_tracker_and_nvml_see_a_known_allocation():
    device = torch.device("cuda:0")
    tracker = MemoryTracker([device])
    tracker.start()
    block = torch.empty(256 * MiB, dtype=torch.uint8, device=device)
    time.sleep(0.2)  # let the NVML sampler see it
    del block
    report = tracker.stop()
    gpu = report["gpu"]["cuda:0"]
    assert gpu["peak_allocated_bytes"] >= 256 * MiB and gpu["peak_reserved_bytes"] >= gpu["peak_allocated_bytes"]
    nvml = report["nvml"]
    if nvml["available"]:
        device_report = nvml["devices"]["cuda:0"]
        assert device_report["device_used_peak_bytes"] >= 256 * MiB
        if device_report["process_used_peak_bytes"] is not None:
            assert device_report["process_used_peak_bytes"] >= 256 * MiB
        # every other GPU NVML sees on the host, whatever CUDA_VISIBLE_DEVICES hides from torch
        assert len(nvml["other_gpus"]) == nvml_module.nvml().nvmlDeviceGetCount() - 1


def test_nvml_without_a_driver_reports_why_instead_of_failing():
    if torch.cuda.is_available():
        pytest.skip("this host has a GPU driver")
    monitor = NvmlMonitor([0])
    monitor.start()
    report = monitor.stop()
    assert report["available"] is False
    assert "NVML unavailable" in report["reason"]


class FakeNvml:
    """The few NVML calls the monitor makes, with figures the test controls: this job's GPU is "handle0", the host
    has one more, "handle1", whose utilization the test sets."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2

    def __init__(self):
        self.used, self.energy_mj, self.sm_clock, self.mem_clock = 1000 * MiB, 50_000, 1980, 3201
        self.busy, self.other_busy, self.utilization_asked = 100, 0, set()

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"handle{index}"

    def nvmlDeviceGetUUID(self, handle):
        return f"GPU-{handle}".encode()

    def nvmlDeviceGetIndex(self, handle):
        return int(handle.removeprefix("handle"))

    def nvmlDeviceGetUtilizationRates(self, handle):
        self.utilization_asked.add(handle)
        return SimpleNamespace(gpu=self.busy if handle == "handle0" else self.other_busy, memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=self.used, total=80 * 1024 * MiB)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        other = SimpleNamespace(pid=1, usedGpuMemory=5 * MiB)
        return [other, SimpleNamespace(pid=os.getpid(), usedGpuMemory=self.used)]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.energy_mj

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return {self.NVML_CLOCK_SM: self.sm_clock, self.NVML_CLOCK_MEM: self.mem_clock}[clock]


def _started_monitor(monkeypatch) -> tuple[FakeNvml, NvmlMonitor]:
    """A monitor of this job's GPU 0 over the fake NVML, sampling every 5 ms."""
    fake = FakeNvml()
    monkeypatch.setitem(nvml_module._STATE, "module", fake)
    monkeypatch.setattr(nvml_module, "handle_for", lambda index: f"handle{index}")
    monitor = NvmlMonitor([0], interval_s=0.005)
    monitor.start()
    return fake, monitor


def test_nvml_monitor_keeps_peaks_between_samples_and_the_energy_of_the_window(monkeypatch):
    fake, monitor = _started_monitor(monkeypatch)
    fake.used, fake.sm_clock = 3000 * MiB, 1600  # a transient peak and a throttled clock: only the sampler sees them
    time.sleep(0.1)
    fake.used, fake.energy_mj, fake.sm_clock = 1500 * MiB, 54_500, 1980
    report = monitor.stop()["devices"]["cuda:0"]
    clock = report["sm_clock_mhz"]
    assert (clock["min"], clock["max"]) == (1600, 1980) and 1600 < clock["mean"] < 1980 and clock["samples"] >= 3
    assert report["device_used_peak_bytes"] == 3000 * MiB
    assert report["process_used_peak_bytes"] == 3000 * MiB  # this pid's entry, not pid 1's
    assert report["energy_joules"] == pytest.approx(4.5)  # 4500 mJ over the window


def test_nvml_monitor_tells_a_gpu_that_waited_from_a_slowed_memory_clock(monkeypatch):
    """A decode that ran 2x slower: its GPU's utilization says whether the GPU waited for the host, its memory clock
    whether the memory ran slower; both as mean, min and max over the samples."""
    fake, monitor = _started_monitor(monkeypatch)
    fake.busy, fake.mem_clock = 40, 1593  # the GPU idle 60 % of the time, the memory at half its clock
    time.sleep(0.1)
    fake.busy, fake.mem_clock = 100, 3201
    report = monitor.stop()["devices"]["cuda:0"]
    busy, memory = report["utilization_percent"], report["mem_clock_mhz"]
    assert (busy["min"], busy["max"]) == (40, 100) and 40 < busy["mean"] < 100 and busy["samples"] >= 3
    assert (memory["min"], memory["max"]) == (1593, 3201) and 1593 < memory["mean"] < 3201


def test_nvml_monitor_watches_the_hosts_other_gpus(monkeypatch):
    """A study on another GPU of the host shares it with this job: the record says how busy that GPU was."""
    fake, monitor = _started_monitor(monkeypatch)
    fake.other_busy = 90
    time.sleep(0.1)
    fake.other_busy = 0
    report = monitor.stop()
    assert list(report["devices"]) == ["cuda:0"] and list(report["other_gpus"]) == ["nvml:1"]
    assert fake.utilization_asked == {"handle0", "handle1"}  # this job's GPU for itself, the other for sharing
    assert report["devices"]["cuda:0"]["nvml_index"] == 0  # how other processes' records name this one
    other = report["other_gpus"]["nvml:1"]
    assert other["utilization_percent_max"] == 90 and 0 < other["utilization_percent_mean"] < 90
    assert other["compute_processes_max"] == 2  # the fake lists two processes on every GPU


def test_queries_the_driver_does_not_answer_are_recorded_as_unknown(monkeypatch):
    """Virtualized GPUs answer NotSupported for clocks, energy or utilization: those figures are None, not 0, and
    the rest of the record stands."""

    def unsupported(*args):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    for query in ("nvmlDeviceGetClockInfo", "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetUtilizationRates"):
        monkeypatch.setattr(FakeNvml, query, unsupported)
    _, monitor = _started_monitor(monkeypatch)
    time.sleep(0.05)
    report = monitor.stop()
    device = report["devices"]["cuda:0"]
    assert device["energy_joules"] is None and device["sm_clock_mhz"] is None
    assert device["mem_clock_mhz"] is None and device["utilization_percent"] is None
    assert device["device_used_peak_bytes"] == 1000 * MiB and device["nvml_index"] == 0
    other = report["other_gpus"]["nvml:1"]
    assert other["utilization_percent_mean"] is None and other["compute_processes_max"] == 2


def test_host_load_tells_other_processes_from_this_one():
    """A busy process beside the job counts as other cores; the job's own busy loop does not. Compared with the
    CPU time each process really got (the suite's other workers may share the cores), not with a fixed share."""
    import subprocess
    import sys

    import psutil

    tracker = MemoryTracker([torch.device("cpu")])
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        child = psutil.Process(spinner.pid)
        before, wall = sum(child.cpu_times()[:2]), time.perf_counter()
        tracker.start()
        time.sleep(1.0)
        beside = tracker.stop()["host"]
        spinner_cores = (sum(child.cpu_times()[:2]) - before) / (time.perf_counter() - wall)
    finally:
        spinner.kill()
        spinner.wait()
    assert beside["cpus"] == os.cpu_count()
    assert beside["other_cores"] >= spinner_cores - 0.15 and spinner_cores > 0.1
    assert beside["this_process_cores"] < 0.15  # it slept
    tracker.start()
    before, wall = time.process_time(), time.perf_counter()
    while time.process_time() - before < 0.5:  # half a second of this process's own CPU time
        pass
    own_cores = (time.process_time() - before) / (time.perf_counter() - wall)
    own = tracker.stop()["host"]
    assert own["this_process_cores"] == pytest.approx(own_cores, abs=0.15)


def test_the_report_shows_how_busy_the_host_was():
    record = copy.deepcopy(GENERATE_RECORD)
    device = {"energy_joules": 1.5, "process_used_peak_bytes": None, "device_used_peak_bytes": 1}
    other = {"utilization_percent_mean": 73.25, "utilization_percent_max": 100, "compute_processes_max": 1}
    record["memory"] = {
        "host": {"cpus": 32, "busy_cores": 17.5, "this_process_cores": 1.0, "other_cores": 16.5},
        "nvml": {"available": True, "devices": {"cuda:0": device}, "other_gpus": {"nvml:1": other}},
    }
    row = flatten(Record.from_dict(record))
    assert row["host_other_cores"] == 16.5 and row["other_gpus_busy_%"] == 73.2
    del record["memory"]["host"], record["memory"]["nvml"]["other_gpus"]  # a record written before both existed
    row = flatten(Record.from_dict(record))
    assert "host_other_cores" not in row and "other_gpus_busy_%" not in row


def test_generate_counts_per_token_latencies_per_call(run_job):
    record = run_job(
        "scenario=generate", "scenario.new_tokens=4", "scenario.sequence_length=8", "scenario.iterations=5"
    )
    assert record["status"] == "ok", record.get("error")
    generate = record["measurements"]["generate"]
    # fresh marks every call: 3 per call, never 3, 6, 9, ... as a timer keeping earlier calls' events reports
    assert generate["per_token_count_per_call"] == [3] * 5
    assert generate["per_token"]["count"] == 15
    for phase in ("end_to_end", "prefill", "decode", "per_token"):
        assert generate[phase]["unit"] == "s" and generate[phase]["min"] > 0
    rates = generate["throughput"]
    assert {k: v["unit"] for k, v in rates.items()} == {
        "tokens_per_s": "tokens/s",
        "decode_tokens_per_s": "tokens/s",
        "prefill_tokens_per_s": "tokens/s",
    }
    assert rates["decode_tokens_per_s"]["value"] == pytest.approx(1 * 3 / generate["decode"]["mean"])
    assert all(rate["what"] for rate in rates.values())  # each rate says what it divides by what


def test_one_new_token_has_no_decode_rate(run_job):
    record = run_job("scenario=generate", "scenario.new_tokens=1", "scenario.sequence_length=8")
    assert record["status"] == "ok", record.get("error")
    generate = record["measurements"]["generate"]
    assert generate["per_token_count_per_call"] == [0, 0, 0] and generate["per_token"] is None
    assert "decode_tokens_per_s" not in generate["throughput"]  # not a misleading 0 tokens/s


def test_forward_rates_carry_their_units(run_job):
    record = run_job("scenario.batch_size=2", "scenario.sequence_length=16")
    forward = record["measurements"]["forward"]
    assert forward["latency"]["unit"] == "s"
    samples, tokens = forward["throughput"]["samples_per_s"], forward["throughput"]["tokens_per_s"]
    assert samples["unit"] == "samples/s" and samples["value"] == pytest.approx(2 / forward["latency"]["mean"])
    assert tokens["unit"] == "tokens/s" and tokens["value"] == pytest.approx(32 / forward["latency"]["mean"])


def test_a_backend_that_returns_fewer_tokens_fails_the_run(run_job, monkeypatch):
    real_generate = PyTorchBackend.generate

    def short(self, inputs, new_tokens, on_step):
        return real_generate(self, inputs, new_tokens - 1, on_step)

    monkeypatch.setattr(PyTorchBackend, "generate", short)
    record = run_job("scenario=generate", "scenario.new_tokens=4", "scenario.sequence_length=8")
    assert record["status"] == "failed"
    assert record["error"]["type"] == "MeasurementError"
    assert "asked for 4 new tokens, generation produced 3" in record["error"]["message"]
    assert "measurements" not in record  # nothing implausible reaches the record


def test_summaries_refuse_zero_and_negative_latencies():
    with pytest.raises(MeasurementError, match="positive"):
        summarize([0.01, 0.0], "s")
    with pytest.raises(MeasurementError, match="positive"):
        summarize([-0.002], "s")


GENERATE_RECORD = {
    "config": {"scenario": {"iterations": 2, "new_tokens": 3, "batch_size": 2}},
    "measurements": {
        "generate": {
            "end_to_end": summarize([0.3, 0.3], "s"),
            "per_token_count_per_call": [2, 2],
            "throughput": {"tokens_per_s": {"value": 20.0, "unit": "tokens/s"}},
        },
        "tokens": {"total_tokens": 16},
    },
}


def test_plausibility_check_refuses_stale_per_token_counts():
    record = copy.deepcopy(GENERATE_RECORD)
    check_plausible(Record.from_dict(record))
    record["measurements"]["generate"]["per_token_count_per_call"] = [2, 4]  # the second call kept the first's marks
    with pytest.raises(MeasurementError, match="new_tokens - 1 = 2"):
        check_plausible(Record.from_dict(record))


@pytest.mark.parametrize(("value", "unit"), [(0.0, "tokens/s"), (float("inf"), "tokens/s"), (5.0, "")])
def test_plausibility_check_refuses_bad_rates(value, unit):
    record = copy.deepcopy(GENERATE_RECORD)
    record["measurements"]["generate"]["throughput"]["tokens_per_s"] = {"value": value, "unit": unit}
    with pytest.raises(MeasurementError, match="implausible throughput"):
        check_plausible(Record.from_dict(record))


def test_energy_per_token_from_the_gpu_counter():
    record = copy.deepcopy(GENERATE_RECORD)
    device = {"energy_joules": 1.5, "process_used_peak_bytes": None, "device_used_peak_bytes": 1}
    record["memory"] = {"nvml": {"available": True, "devices": {"cuda:0": device, "cuda:1": dict(device)}}}
    figures = energy(Record.from_dict(record)).to_dict()
    # 2 calls x batch 2 x 3 new tokens = 12 generated tokens; 3 J over both GPUs
    assert figures["joules"] == 3.0 and figures["tokens"] == 12
    assert figures["joules_per_token"] == pytest.approx(0.25) and figures["unit"] == "J per generated token"
    record["memory"]["nvml"]["devices"]["cuda:1"]["energy_joules"] = -5.0
    with pytest.raises(MeasurementError, match="went backwards"):
        energy(Record.from_dict(record))


def test_energy_is_reported_as_unavailable_without_nvml():
    record = copy.deepcopy(GENERATE_RECORD)
    record["memory"] = {"nvml": {"available": False, "reason": "NVML unavailable: no driver"}}
    assert energy(Record.from_dict(record)).to_dict() == {"available": False, "reason": "NVML unavailable: no driver"}
    del record["memory"]
    assert energy(Record.from_dict(record)) is None  # a CPU run has no energy section at all


def test_replayed_seconds_gives_one_calls_time_after_three_warm_up_calls():
    """The GPU probes' timer (scripts/gpu/gemv_probe.py, pdl_probe.py), on the CPU's clock: the median of the
    rounds, divided by the calls a round makes."""
    calls = []

    def run():
        calls.append(1)
        time.sleep(0.002)

    seconds = replayed_seconds(run, rounds=3, device=torch.device("cpu"), repeats=4)
    assert len(calls) == 3 + 3 * 4
    assert 0.002 <= seconds < 0.006  # one call's 2 ms, not a round's 8


def test_replayed_candidates_times_each_candidate_and_leaves_out_those_that_fail():
    """The probes' config search: each candidate's own run timed, one that raises reported and left out."""
    failed = []

    def run_for(pause):
        if pause is None:
            raise RuntimeError("does not compile")
        return lambda: time.sleep(pause)

    timings = replayed_candidates([0.001, None, 0.004], run_for, rounds=2, device=torch.device("cpu"),
                                  on_error=lambda c, e: failed.append((c, str(e))))  # fmt: skip
    assert list(timings) == [0.001, 0.004] and failed == [(None, "does not compile")]
    assert timings[0.001] < timings[0.004] and 0.004 <= timings[0.004] < 0.012
    with pytest.raises(RuntimeError):  # without on_error, a failure is not hidden
        replayed_candidates([None], run_for, rounds=1, device=torch.device("cpu"))
