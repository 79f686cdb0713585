"""Padded batches: each row carries `scenario.padding_ratio` of padding on the configured side, with a mask
that matches, token counts in the results, and attention implementations that still agree on real tokens."""

from __future__ import annotations

import pytest
import torch

from runner.config.load import to_run_config
from runner.config.scenario import PaddingSide, ScenarioConfig
from runner.errors import ConfigError
from runner.models.inputs import random_inputs, token_counts
from tests.conftest import compose_config

PAD = 3


@pytest.mark.parametrize("side", [PaddingSide.right, PaddingSide.left])
def test_rows_carry_the_padding_ratio_on_the_configured_side(side):
    scenario = ScenarioConfig(batch_size=3, sequence_length=20, padding_ratio=0.3, padding_side=side)
    batch = random_inputs(scenario, vocab_size=1000, pad_token_id=PAD)
    mask, ids = batch["attention_mask"], batch["input_ids"]
    assert mask.shape == ids.shape == (3, 20)
    expected_row = torch.tensor([1] * 14 + [0] * 6) if side == PaddingSide.right else torch.tensor([0] * 6 + [1] * 14)
    assert torch.equal(mask, expected_row.expand(3, 20))  # "30% of the input is padding", on every row
    assert torch.all(ids[mask == 0] == PAD)
    assert torch.all(ids[mask == 1] != PAD)
    assert token_counts(batch) == {"real_tokens": 42, "padded_tokens": 18, "total_tokens": 60}


def test_no_padding_means_a_full_mask():
    batch = random_inputs(ScenarioConfig(batch_size=2, sequence_length=8), vocab_size=100, pad_token_id=PAD)
    assert torch.all(batch["attention_mask"] == 1)


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_padding_ratio_outside_zero_to_one_is_refused(ratio):
    with pytest.raises(ConfigError, match=r"scenario.padding_ratio=.* must be in \[0, 1\)"):
        to_run_config(compose_config([f"scenario.padding_ratio={ratio}", "hardware=cpu"]))


@pytest.mark.parametrize("side", ["right", "left"])
def test_results_report_real_and_padded_tokens_and_outputs_agree(run_job, side):
    record = run_job(
        "attention=sdpa",
        "scenario.batch_size=2",
        "scenario.sequence_length=40",
        "scenario.padding_ratio=0.3",
        f"scenario.padding_side={side}",
    )
    assert record["status"] == "ok", record.get("error")
    counts = {"real_tokens": 56, "padded_tokens": 24, "total_tokens": 80}
    assert record["inputs"] == counts
    assert {k: record["measurements"]["tokens"][k] for k in counts} == counts
    forward = record["measurements"]["forward"]["throughput"]
    assert forward["real_tokens_per_s"]["value"] == pytest.approx(forward["tokens_per_s"]["value"] * 56 / 80)
    assert record["agreement"]["agrees"], record["agreement"]  # sdpa with a padding mask matches eager
    assert record["agreement"]["top1_agreement"] == 1.0


def test_generation_from_a_left_padded_batch(run_job):
    record = run_job(
        "scenario=generate",
        "scenario.batch_size=2",
        "scenario.sequence_length=16",
        "scenario.new_tokens=4",
        "scenario.padding_ratio=0.25",
        "scenario.padding_side=left",
    )
    assert record["status"] == "ok", record.get("error")
    assert record["measurements"]["tokens"]["padded_tokens"] == 8
    assert record["measurements"]["tokens"]["new_tokens_per_row"] == 4
    assert record["attention"]["sdpa_kernels"]  # SDPA ran over the padded prompt
