"""What an attention conversion (falcon_attention, bloom_attention) hands back: its record, and its reversal, which
must give back the original model exactly (forward and state dict) before anything is saved."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from runner.errors import OptimizationNotApplied

KIND = "fused_attention"


@dataclass
class FusedAttention:
    record: dict[str, Any]
    undo: Callable[[], bool]  # puts the original forwards back; True when none of the conversion's is left
    before: dict[str, object]  # the model's fingerprint before the conversion
    architecture: str  # "Falcon", "Bloom": for the message

    def reverse(self, model: nn.Module) -> dict[str, Any]:
        from runner.convert.bettertransformer import fingerprint

        forward_restored = self.undo()
        state_dict_restored = fingerprint(model) == self.before
        if not (forward_restored and state_dict_restored):
            raise OptimizationNotApplied(
                f"{KIND}: reversing left {self.architecture} converted (forward restored: {forward_restored}, "
                f"state dict restored: {state_dict_restored}); the model must not be saved"
            )
        self.record["reversed"] = {"state_dict_restored": True, "forward_restored": True}
        return self.record
