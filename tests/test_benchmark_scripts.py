"""The benchmark scripts on the CPU: scripts/overhead.py (harness overhead) and scripts/decode_profile.py (where a
decode step's time goes) must keep running and comparing like with like. Their verdicts are GPU figures
(docs/benchmarks.md); nothing here asserts a timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from decode_profile import busy_us  # noqa: E402


def script(*args: str) -> dict:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_overhead_benchmark_alternates_the_two_loops_on_the_same_work():
    out = script(
        "scripts/overhead.py", "--rounds", "2", "hardware=cpu", "model=tiny-llama",
        "scenario.sequence_length=32", "scenario.iterations=3", "scenario.warmup_runs=1",
    )  # fmt: skip
    assert [(b["round"], b["loop"]) for b in out["blocks"]] == [(0, "hand"), (0, "runner"), (1, "runner"), (1, "hand")]
    assert out["calls_per_block"] == 3 and all(b["mean_ms"] > 0 for b in out["blocks"])
    assert out["device"] == "cpu" and all(b["sm_clock_mhz"] is None for b in out["blocks"])
    hand = {b["round"]: b["mean_ms"] for b in out["blocks"] if b["loop"] == "hand"}
    runner = {b["round"]: b["mean_ms"] for b in out["blocks"] if b["loop"] == "runner"}
    assert out["runner_over_hand_per_round"] == pytest.approx([runner[r] / hand[r] for r in (0, 1)])
    assert out["within_2_percent"] == (abs(out["overhead"]) <= 0.02)


def test_gpu_busy_time_counts_overlapping_kernels_once():
    # two streams overlap in 5-8; a gap 12-20 is idle; a kernel inside another adds nothing
    assert busy_us([(0, 8), (5, 12), (20, 30), (22, 25)]) == 22
    assert busy_us([]) == 0


@pytest.mark.slow
def test_decode_profile_takes_one_step_from_two_runs():
    out = script(
        "scripts/decode_profile.py", "--short", "2", "--long", "6", "hardware=cpu", "model=tiny-llama",
        "convert.compile=false", "scenario.sequence_length=16",
    )  # fmt: skip
    assert out["new_tokens"] == {"short": 2, "long": 6} and out["device"] == "cpu"
    step = out["per_decode_step"]
    assert step["wall_ms"] > 0 and step["bytes"] > 0
    assert step["achieved_gbs"] == pytest.approx(step["bytes"] / step["wall_ms"] / 1e6)
    assert "gpu_busy_ms" not in step and out["note"] == "no GPU: wall time only"
