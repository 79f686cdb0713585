"""The columns of summary.csv from a record's `quality` section (runner/stages/quality.py)."""

from __future__ import annotations

from typing import Any

from runner.record import Quality

QUALITY_COLUMNS = (
    "perplexity",
    "reference_perplexity",
    "perplexity_increase",
    "perplexity_increase_relative",
    "top1_agreement",
    "kl_divergence",
    "cosine_similarity_mean",
    "cosine_similarity_min",
    "label_agreement",
)


def quality_columns(section: Quality | None) -> dict[str, Any]:
    """The figures of a record's quality section, prefixed `quality_` (the agreement columns have similar names)."""
    if section is None or not section.to_dict() or section.has("skipped"):
        return {}
    row = {f"quality_{key}": getattr(section, key) for key in QUALITY_COLUMNS if section.has(key)}
    greedy = section.greedy or {}
    if greedy.get("identical_token_share") is not None:
        row["quality_greedy_identical"] = greedy["identical_token_share"]
    row["quality_passed"] = section.passed
    return row
