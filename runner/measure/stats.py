"""Summary statistics of repeated measurements, each with its unit."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from runner.errors import MeasurementError


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def summarize(values: Sequence[float], unit: str) -> dict:
    """count, mean, p50, p90, p99, stdev, min, max and unit; refuses empty or non-positive figures."""
    if not values:
        raise MeasurementError(f"no measurements to summarize ({unit})")
    bad = [v for v in values if not (v > 0 and math.isfinite(v))]
    if bad:
        raise MeasurementError(f"implausible measurement {bad[0]!r} {unit}: every figure must be positive")
    ordered = sorted(values)
    return {
        "count": len(values),
        "mean": statistics.fmean(values),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": ordered[0],
        "max": ordered[-1],
        "unit": unit,
    }
