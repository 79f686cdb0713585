"""scripts/overhead.py, the harness-overhead benchmark, on the CPU: it must keep running and comparing like with
like. Its 2% verdict is a GPU figure (docs/benchmarks.md); nothing here asserts a timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_overhead_benchmark_alternates_the_two_loops_on_the_same_work():
    result = subprocess.run(
        [sys.executable, "scripts/overhead.py", "--rounds", "2", "hardware=cpu", "model=tiny-llama"]
        + ["scenario.sequence_length=32", "scenario.iterations=3", "scenario.warmup_runs=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert [(b["round"], b["loop"]) for b in out["blocks"]] == [(0, "hand"), (0, "runner"), (1, "runner"), (1, "hand")]
    assert out["calls_per_block"] == 3 and all(b["mean_ms"] > 0 for b in out["blocks"])
    assert out["device"] == "cpu" and all(b["sm_clock_mhz"] is None for b in out["blocks"])
    hand = {b["round"]: b["mean_ms"] for b in out["blocks"] if b["loop"] == "hand"}
    runner = {b["round"]: b["mean_ms"] for b in out["blocks"] if b["loop"] == "runner"}
    assert out["runner_over_hand_per_round"] == pytest.approx([runner[r] / hand[r] for r in (0, 1)])
    assert out["within_2_percent"] == (abs(out["overhead"]) <= 0.02)
