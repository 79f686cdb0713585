"""The host's share of each decode step in transformers' generate, kept small. With the deferred stop check the host
queues a step while the GPU runs the previous one, so a step takes the longer of the two; at batch 1 the runner's int4
kernels make a 7B step of about 2.4 ms of GPU work on the H200 while the host's loop took about 2.8 (docs/benchmarks.md
§6l): there, host time is decode speed.

- Exactly `new_tokens` tokens by one logits processor (ExactLength): it marks the step for the runner's clock and masks
  the end-of-sequence tokens, where `min_new_tokens` made transformers add two processors (MinLength and
  MinNewTokensLength, each one more `inspect.signature` on every step, plus their masking ops). The scores, and so
  the tokens, are the same; transformers' end-of-sequence stopping criterion stays, and never fires.
- Decode masks inside the compiled step (convert.compile_options.masks_in_graph): with a static cache, generate builds
  every decode step's 4D attention mask in eager ops on the host before calling the compiled step. For inputs without
  padding the runner's mask builder gives it none for the decode steps, and the model builds the same causal mask,
  from the cache position, inside the compiled graph (what transformers does for any mask it is not given; the prompt
  keeps transformers' mask). Padded inputs, and models with a mask builder or input preparation of their own, keep
  transformers' way."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from transformers import LogitsProcessor

from runner.config.run import RunConfig


class ExactLength(LogitsProcessor):
    """Calls `on_step` once per generated token, right after its logits are computed, and gives the end-of-sequence
    tokens (`eos_ids`) a score of -inf, so generation runs to max_new_tokens."""

    def __init__(self, on_step, eos_ids: list[int]) -> None:
        self.on_step = on_step
        self.eos_ids = eos_ids
        self.index: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.on_step()
        if self.index is None:  # once per generate call: the ids the scores have, on their device
            ids = [i for i in self.eos_ids if 0 <= i < scores.shape[-1]]
            self.index = torch.tensor(ids, dtype=torch.long, device=scores.device)
        return scores.index_fill(-1, self.index, -math.inf) if self.index.numel() else scores


def eos_ids(generation_config) -> list[int]:
    """The end-of-sequence token ids of a model's generation config (an int, a list or None)."""
    eos = generation_config.eos_token_id
    return [] if eos is None else [int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos])]


def decode_masks(cfg: RunConfig, model, inputs: dict) -> tuple[bool, str]:
    """(whether the decode steps' masks are left to the compiled graph, what the record says) for a generate call of
    `model` on `inputs`. The answer changes the compiled step's inputs (a mask or none), so it belongs to the call's
    shapes. One host read of the inputs' mask per call (not per step)."""
    from transformers import GenerationMixin

    if not (cfg.convert.compile and cfg.convert.compile_options.masks_in_graph):
        return False, "built on the host each decode step (transformers' default)"
    own = type(model).__name__
    if getattr(type(model), "create_masks_for_generate", None) is not None:
        return False, f"built on the host each decode step ({own} builds its own masks)"
    generic = GenerationMixin.prepare_inputs_for_generation
    if getattr(type(model), "prepare_inputs_for_generation", generic) is not generic:
        return False, f"built on the host each decode step ({own} prepares its own inputs)"  # Bloom on 5.17
    mask = inputs.get("attention_mask")
    if mask is not None and not bool(mask.all()):
        return False, "built on the host each decode step (padded inputs)"
    return True, "built inside the compiled decode step"


@contextlib.contextmanager
def decode_masks_in_graph(model, in_graph: bool) -> Iterator[None]:
    """Within the block (with `in_graph`: decode_masks' answer), generate gives the model's decode steps no attention
    mask, so the model builds its causal mask inside the compiled step; the prompt keeps transformers' mask."""
    if not in_graph:
        yield
        return
    from transformers.masking_utils import create_masks_for_generate

    def masks(**kwargs):
        if kwargs["inputs_embeds"].shape[1] != 1:  # the prompt: transformers' mask, built once
            return create_masks_for_generate(**kwargs)
        return None  # a decode step: the model builds its causal mask inside the compiled graph

    missing = object()
    before = vars(model).get("create_masks_for_generate", missing)
    model.create_masks_for_generate = masks
    try:
        yield
    finally:
        vars(model).pop("create_masks_for_generate", None)
        if before is not missing:
            model.create_masks_for_generate = before
