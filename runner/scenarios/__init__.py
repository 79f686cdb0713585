"""Scenarios: what the infer stage measures. Importing this package registers all of them."""

from runner.scenarios import forward, generate  # noqa: F401  (registration)
from runner.scenarios.base import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "Scenario"]
