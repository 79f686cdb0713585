"""What the model said, not only how fast: labels with scores for a classifier, the sentence embedding
(mean over real tokens) for an encoder. The infer stage records it from one forward pass after the measured
calls, as the `predictions` section of results.json."""

from __future__ import annotations

from typing import Any

import torch

from runner.config.model import Task
from runner.context import RunContext

ROWS = 4  # rows of the batch shown; with scenario.text every row holds the same text
FIRST_VALUES = 5


def _classification(logits: torch.Tensor, id2label: dict) -> list[dict]:
    probabilities = torch.softmax(logits.float(), dim=-1)
    rows = []
    for row in probabilities[:ROWS].cpu():
        best = int(row.argmax())
        rows.append(
            {
                "label": id2label.get(best, str(best)),
                "score": float(row[best]),
                "scores": {id2label.get(i, str(i)): float(p) for i, p in enumerate(row.tolist())},
            }
        )
    return rows


def _embeddings(hidden: torch.Tensor, mask: torch.Tensor) -> dict:
    weights = mask.to(hidden.device, torch.float32).unsqueeze(-1)
    pooled = (hidden.float() * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    return {
        "pooling": "mean over real tokens (sentence-transformers' default)",
        "embedding_shape": list(pooled.shape),
        "rows": [
            {"l2_norm": float(v.norm()), "first_values": [round(x, 6) for x in v[:FIRST_VALUES].tolist()]}
            for v in pooled[:ROWS].cpu()
        ],
    }


def predictions(ctx: RunContext, mask: torch.Tensor, output: torch.Tensor, id2label: dict | None) -> dict[str, Any]:
    """The predictions section for a classifier's logits or an encoder's last hidden state."""
    task = ctx.cfg.model.task
    text = ctx.cfg.scenario.text
    section: dict[str, Any] = {"task": task.value, **({"text": text} if text is not None else {"inputs": "random ids"})}
    if ctx.record.model is not None and ctx.record.model.weights == "random":
        section["note"] = "random weights: the values show the mechanism, not a meaningful answer"
    if task == Task.sequence_classification:
        section["rows"] = _classification(output, {int(k): v for k, v in (id2label or {}).items()})
    else:
        section |= _embeddings(output, mask)
    return section


def predict(ctx: RunContext) -> dict[str, Any] | None:
    """The predictions of one forward pass over the measured batch, made after the measured calls so that
    the softmax and the copy to the host stay out of them. A causal LM's answer is its generated tokens, which
    one forward pass does not give: None. The infer stage records them."""
    if ctx.cfg.model.task == Task.causal_lm:
        return None
    with ctx.backend.inference_context():
        output = ctx.backend.forward(ctx.inputs)
    return predictions(ctx, ctx.inputs["attention_mask"], output, ctx.backend.label_names())
