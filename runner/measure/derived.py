"""After the pipeline: refuse implausible measurements, and derive energy per token from the GPU counter.

A run whose figures cannot be right (a call that produced fewer tokens, a missing unit, a zero or infinite
throughput) fails with MeasurementError instead of reporting them.
"""

from __future__ import annotations

import math
from typing import Any

from runner.errors import MeasurementError


def _stats_and_rates(section: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    stats = {k: v for k, v in section.items() if isinstance(v, dict) and "mean" in v}
    return stats, section.get("throughput", {})


def check_plausible(record: dict[str, Any]) -> None:
    measurements = record.get("measurements")
    if not measurements:
        return  # no infer stage in this pipeline: nothing was measured
    scenario = record["config"]["scenario"]
    for name in ("forward", "generate"):
        if name not in measurements:
            continue
        stats, rates = _stats_and_rates(measurements[name])
        for phase, summary in stats.items():
            if not summary.get("unit"):
                raise MeasurementError(f"{name}.{phase} has no unit")
        for key, rate in rates.items():
            value = rate.get("value")
            if not rate.get("unit") or value is None or not math.isfinite(value) or value <= 0:
                raise MeasurementError(f"implausible throughput {name}.{key} = {value!r} {rate.get('unit')}")
    generate = measurements.get("generate")
    if generate:
        calls = generate["end_to_end"]["count"]
        if calls != scenario["iterations"]:
            raise MeasurementError(
                f"{calls} generate calls were measured, scenario.iterations={scenario['iterations']}"
            )
        counts = generate.get("per_token_count_per_call", [])
        expected = scenario["new_tokens"] - 1
        if len(counts) != calls or any(count != expected for count in counts):
            raise MeasurementError(
                f"per-token latencies per call {counts} should all be new_tokens - 1 = {expected}: a timer that keeps "
                "marks from earlier calls, or a call that stopped early"
            )
    forward = measurements.get("forward")
    if forward and forward["latency"]["count"] != scenario["iterations"]:
        raise MeasurementError(
            f"{forward['latency']['count']} forward calls were measured, scenario.iterations={scenario['iterations']}"
        )


def _tokens_measured(record: dict[str, Any]) -> tuple[int, str] | None:
    measurements, scenario = record["measurements"], record["config"]["scenario"]
    if "generate" in measurements:
        calls = measurements["generate"]["end_to_end"]["count"]
        return scenario["batch_size"] * scenario["new_tokens"] * calls, "generated token"
    if "forward" in measurements:
        calls = measurements["forward"]["latency"]["count"]
        return measurements["tokens"]["total_tokens"] * calls, "processed token (padding included)"
    return None


def energy(record: dict[str, Any]) -> dict[str, Any] | None:
    """Joules the GPUs drew over the measured calls and per token, from NVML's energy counter."""
    nvml = record.get("memory", {}).get("nvml")
    if not nvml or not record.get("measurements"):
        return None  # no GPU in this run
    if not nvml.get("available"):
        return {"available": False, "reason": nvml.get("reason")}
    joules = [d["energy_joules"] for d in nvml["devices"].values()]
    if any(j is None for j in joules):
        return {"available": False, "reason": "this GPU has no energy counter (nvmlDeviceGetTotalEnergyConsumption)"}
    total = sum(joules)
    if total < 0:
        raise MeasurementError(f"the GPU energy counter went backwards ({total:.3f} J): was the driver reloaded?")
    tokens, per = _tokens_measured(record) or (0, "token")
    result: dict[str, Any] = {
        "available": True,
        "source": "nvmlDeviceGetTotalEnergyConsumption, over the measured calls, all devices of the run",
        "joules": total,
        "tokens": tokens,
        "joules_per_token": None,
        "unit": f"J per {per}",
    }
    if total == 0 or tokens == 0:
        result["note"] = "the energy counter did not advance: measure more iterations for an energy figure"
    else:
        result["joules_per_token"] = total / tokens
    return result


def finish(record: dict[str, Any]) -> None:
    """Run after the pipeline succeeded: raises MeasurementError, or adds derived figures to the record."""
    check_plausible(record)
    if (figures := energy(record)) is not None:
        record["energy"] = figures
