"""Greedy generation in ONNX Runtime with the exported KV cache, step for step as transformers' `generate`
does it for the PyTorch backend: same position ids, mask growth, logits only where needed, and the
end-of-sequence token suppressed until `new_tokens` exist (min_new_tokens)."""

from __future__ import annotations

import torch

from runner.backends.onnxruntime.binding import BoundSession
from runner.backends.onnxruntime.graph import DTYPES, Graph


def step_outputs(graph: Graph, batch: int, sequence: int, past: int, kept: int) -> dict:
    # a graph without a logits_to_keep input returns logits for every position ("sequence")
    sizes = {
        "batch": batch,
        "sequence": sequence,
        "past_sequence": past,
        "total_sequence": past + sequence,
        "kept": kept,
    }
    dtype = DTYPES[graph.dtype]
    return {name: (graph.shape(graph.outputs[name], **sizes), dtype) for name in ["logits", *graph.present_names]}


def run_step(
    session: BoundSession, graph: Graph, ids, mask, positions, past: dict, kept: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One call of the decoder graph; `kept` are the positions whose logits are computed."""
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "logits_to_keep": kept}
    feeds = {name: feeds[name] for name in graph.inputs if name in feeds} | past
    batch, sequence = ids.shape
    return session.run(feeds, step_outputs(graph, batch, sequence, mask.shape[1] - sequence, kept.numel()))


def greedy(
    session: BoundSession, graph: Graph, inputs: dict, new_tokens: int, on_step, eos_token_ids: list[int]
) -> torch.Tensor:
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    device = ids.device
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as transformers' generate
    past = graph.empty_past(ids.shape[0], device)
    last = torch.tensor([ids.shape[1] - 1], device=device)  # the prefill's logits: the last position's only
    only_position = torch.zeros(1, dtype=torch.long, device=device)  # a decode step has one position
    eos = torch.tensor(eos_token_ids, device=device) if eos_token_ids else None
    generated = []
    step_ids = ids
    for _ in range(new_tokens):
        out = run_step(session, graph, step_ids, mask, positions, past, last)
        on_step()
        logits = out["logits"][:, -1, :]  # a buffer of this step's own: masked in place
        if eos is not None:
            logits[:, eos] = float("-inf")
        step_ids = logits.argmax(-1, keepdim=True)
        generated.append(step_ids)
        past = {p.replace("present", "past"): out[p] for p in graph.present_names}
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        positions = positions[:, -1:] + 1
        last = only_position
    return torch.cat([ids, *generated], dim=1)
