"""Greedy generation in ONNX Runtime with the exported KV cache, step for step as transformers' `generate`
does it for the PyTorch backend: same position ids, mask growth, logits only where needed, and the
end-of-sequence tokens suppressed until `new_tokens` exist (host_loop.ExactLength).

`start` builds what every call begins from (position ids, the empty KV cache, index tensors) once, outside
the timed window; `greedy` then does only the steps. Each step binds its growing KV cache and allocates its
outputs, as PyTorch's cache grows by a concatenation each step: that is part of decoding."""

from __future__ import annotations

from dataclasses import dataclass

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


def step_feeds(graph: Graph, ids, mask, positions, past: dict, kept: torch.Tensor) -> dict[str, torch.Tensor]:
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "logits_to_keep": kept}
    return {name: feeds[name] for name in graph.inputs if name in feeds} | past


def run_step(
    session: BoundSession, graph: Graph, ids, mask, positions, past: dict, kept: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One call of the decoder graph; `kept` are the positions whose logits are computed."""
    batch, sequence = ids.shape
    outputs = step_outputs(graph, batch, sequence, mask.shape[1] - sequence, kept.numel())
    return session.run(step_feeds(graph, ids, mask, positions, past, kept), outputs)


@dataclass(frozen=True)
class Start:
    """What every generation from one batch begins with; read, never written, by `greedy`."""

    ids: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    past: dict[str, torch.Tensor]
    last: torch.Tensor  # the prefill's logits: the last position's only
    only_position: torch.Tensor  # a decode step has one position
    eos: torch.Tensor | None


def start(graph: Graph, inputs: dict, eos_token_ids: list[int]) -> Start:
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    device = ids.device
    return Start(
        ids=ids,
        mask=mask,
        positions=(mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0),  # as transformers' generate
        past=graph.empty_past(ids.shape[0], device),
        last=torch.tensor([ids.shape[1] - 1], device=device),
        only_position=torch.zeros(1, dtype=torch.long, device=device),
        eos=torch.tensor(eos_token_ids, device=device) if eos_token_ids else None,
    )


def greedy(session: BoundSession, graph: Graph, begin: Start, new_tokens: int, on_step) -> torch.Tensor:
    mask, positions, past, last = begin.mask, begin.positions, begin.past, begin.last
    generated = []
    step_ids = begin.ids
    for _ in range(new_tokens):
        out = run_step(session, graph, step_ids, mask, positions, past, last)
        on_step()
        logits = out["logits"][:, -1, :]  # a buffer of this step's own: masked in place
        if begin.eos is not None:
            logits[:, begin.eos] = float("-inf")
        step_ids = logits.argmax(-1, keepdim=True)
        generated.append(step_ids)
        past = {p.replace("present", "past"): out[p] for p in graph.present_names}
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        positions = positions[:, -1:] + 1
        last = begin.only_position
    return torch.cat([begin.ids, *generated], dim=1)
