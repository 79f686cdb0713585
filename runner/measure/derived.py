"""After the pipeline: refuse implausible measurements, and derive energy per token from the GPU counter.

A run whose figures cannot be right (a call that produced fewer tokens, a missing unit, a zero or infinite
throughput) fails with MeasurementError instead of reporting them.
"""

from __future__ import annotations

import math

from runner.errors import MeasurementError
from runner.record import Energy, Record


def check_plausible(record: Record) -> None:
    measurements = record.measurements
    if not measurements:
        return  # no infer stage in this pipeline: nothing was measured
    scenario = record.scenario_config()
    for name, measured in measurements.scenarios().items():
        for phase, summary in measured.phases().items():
            if not summary.unit:
                raise MeasurementError(f"{name}.{phase} has no unit")
        for key, rate in (measured.throughput or {}).items():
            value = rate.value
            if not rate.unit or value is None or not math.isfinite(value) or value <= 0:
                raise MeasurementError(f"implausible throughput {name}.{key} = {value!r} {rate.unit}")
    if generate := measurements.generate:
        calls = generate.phase("end_to_end").count
        if calls != scenario["iterations"]:
            raise MeasurementError(
                f"{calls} generate calls were measured, scenario.iterations={scenario['iterations']}"
            )
        counts = generate.per_token_count_per_call or []
        expected = scenario["new_tokens"] - 1
        if len(counts) != calls or any(count != expected for count in counts):
            raise MeasurementError(
                f"per-token latencies per call {counts} should all be new_tokens - 1 = {expected}: a timer that keeps "
                "marks from earlier calls, or a call that stopped early"
            )
    forward = measurements.forward
    if forward and forward.phase("latency").count != scenario["iterations"]:
        raise MeasurementError(
            f"{forward.phase('latency').count} forward calls were measured, "
            f"scenario.iterations={scenario['iterations']}"
        )


def _tokens_measured(record: Record) -> tuple[int, str] | None:
    measurements, scenario = record.measurements, record.scenario_config()
    if measurements.generate:
        calls = measurements.generate.phase("end_to_end").count
        return scenario["batch_size"] * scenario["new_tokens"] * calls, "generated token"
    if measurements.forward:
        calls = measurements.forward.phase("latency").count
        return measurements.tokens.total_tokens * calls, "processed token (padding included)"
    return None


def energy(record: Record) -> Energy | None:
    """Joules the GPUs drew over the measured calls and per token, from NVML's energy counter."""
    nvml = record.memory.nvml if record.memory else None
    if not nvml or not record.measurements:
        return None  # no GPU in this run
    if not nvml.available:
        return Energy(available=False, reason=nvml.reason)
    joules = [d.energy_joules for d in nvml.devices.values()]
    if any(j is None for j in joules):
        return Energy(available=False, reason="this GPU has no energy counter (nvmlDeviceGetTotalEnergyConsumption)")
    total = sum(joules)
    if total < 0:
        raise MeasurementError(f"the GPU energy counter went backwards ({total:.3f} J): was the driver reloaded?")
    tokens, per = _tokens_measured(record) or (0, "token")
    result = Energy(
        available=True,
        source="nvmlDeviceGetTotalEnergyConsumption, over the measured calls, all devices of the run",
        joules=total,
        tokens=tokens,
        joules_per_token=None,
        unit=f"J per {per}",
    )
    if total == 0 or tokens == 0:
        result.note = "the energy counter did not advance: measure more iterations for an energy figure"
    else:
        result.joules_per_token = total / tokens
    return result


def finish(record: Record) -> None:
    """Run after the pipeline succeeded: raises MeasurementError, or adds derived figures to the record."""
    check_plausible(record)
    if (figures := energy(record)) is not None:
        record.energy = figures
