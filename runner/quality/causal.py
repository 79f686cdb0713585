"""Causal LMs: perplexity over the evaluation text in chunks of the scenario's sequence length, the reference's
top-k next-token distribution (for top-1 agreement and KL), and greedy continuations of a few fixed prompts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

TOP_K = 64  # reference log-probs kept per position: the KL below is over these tokens plus the rest as one bin
PROMPTS = (
    "The capital of France is",
    "def fibonacci(n):\n",
    "Once upon a time, in a small village,",
    "The three laws of thermodynamics state that",
)
KL_BASIS = f"KL(reference || run) over the reference's top-{TOP_K} tokens plus the rest as one bin (a lower bound)"


@dataclass
class CausalScores:
    nll: torch.Tensor  # [positions] negative log-likelihood of each next token, nats
    top_ids: torch.Tensor  # [positions, TOP_K] most likely next tokens, best first
    top_logprobs: torch.Tensor  # [positions, TOP_K] their log-probabilities
    continuations: list[list[int]]  # greedy new tokens per prompt

    @property
    def perplexity(self) -> float:
        return math.exp(float(self.nll.double().mean()))


def chunks(ids: torch.Tensor, length: int) -> torch.Tensor:
    """[n, length] windows of the token ids, the incomplete last one dropped (every window has the same shape)."""
    usable = ids.numel() // length * length
    return ids[:usable].view(-1, length)


def score(backend, windows: torch.Tensor, batch_size: int, reference: CausalScores | None = None):
    """This backend's scores of the windows; with `reference`, also its log-probs at the reference's top tokens."""
    nll, top_ids, top_logprobs, at_reference = [], [], [], []
    device = backend.input_device()
    offset = 0
    for start in range(0, windows.shape[0], batch_size):
        batch = windows[start : start + batch_size].to(device)
        inputs = {"input_ids": batch, "attention_mask": torch.ones_like(batch)}
        with backend.inference_context():
            logits = backend.forward(inputs)
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1).flatten(0, 1)
        targets = batch[:, 1:].flatten().to(logprobs.device)
        nll.append(-logprobs.gather(1, targets[:, None])[:, 0].cpu())
        values, indices = logprobs.topk(TOP_K, dim=-1)
        top_ids.append(indices.cpu())
        top_logprobs.append(values.cpu())
        if reference is not None:
            ids = reference.top_ids[offset : offset + logprobs.shape[0]].to(logprobs.device)
            at_reference.append(logprobs.gather(1, ids).cpu())
        offset += logprobs.shape[0]
    scores = CausalScores(torch.cat(nll), torch.cat(top_ids), torch.cat(top_logprobs), [])
    return scores, (torch.cat(at_reference) if reference is not None else None)


def continuations(backend, tokenizer, new_tokens: int) -> list[list[int]]:
    """Greedy continuations of the fixed prompts through the backend's own generate."""
    found = []
    device = backend.input_device()
    for prompt in PROMPTS:
        encoded = tokenizer(prompt, return_tensors="pt")
        inputs = {"input_ids": encoded["input_ids"].to(device), "attention_mask": encoded["attention_mask"].to(device)}
        with backend.inference_context():
            output = backend.generate(inputs, new_tokens, lambda: None)
        found.append(output[0, inputs["input_ids"].shape[1] :].tolist())
    return found


def kl_divergence(reference: CausalScores, at_reference: torch.Tensor) -> float:
    """Mean over positions of KL(reference || run) on the reference's top tokens plus one bin for the rest."""
    p_top, q_top = reference.top_logprobs.exp(), at_reference.exp()
    p_rest = (1 - p_top.sum(-1)).clamp_min(1e-12)
    q_rest = (1 - q_top.sum(-1)).clamp_min(1e-12)
    kl = (p_top * (reference.top_logprobs - at_reference)).sum(-1) + p_rest * (p_rest.log() - q_rest.log())
    return float(kl.clamp_min(0).mean())


def greedy_agreement(run: list[list[int]], reference: list[list[int]]) -> dict:
    same, total, first = 0, 0, []
    for mine, theirs in zip(run, reference, strict=True):
        pairs = list(zip(mine, theirs, strict=False))
        same += sum(a == b for a, b in pairs)
        total += max(len(mine), len(theirs))
        first.append(next((i for i, (a, b) in enumerate(pairs) if a != b), None))
    return {
        "prompts": len(run),
        "identical_token_share": same / total if total else None,
        "first_difference": first,  # per prompt: the first new token that differs, None where all are identical
    }


def compare(run: CausalScores, reference: CausalScores, at_reference: torch.Tensor) -> dict:
    perplexity, reference_perplexity = run.perplexity, reference.perplexity
    result = {
        "perplexity": perplexity,
        "reference_perplexity": reference_perplexity,
        "perplexity_increase": perplexity - reference_perplexity,
        "perplexity_increase_relative": perplexity / reference_perplexity - 1,
        "top1_agreement": float((run.top_ids[:, 0] == reference.top_ids[:, 0]).float().mean()),
        "kl_divergence": kl_divergence(reference, at_reference),
        "kl_basis": KL_BASIS,
    }
    if run.continuations and reference.continuations:
        result["greedy"] = greedy_agreement(run.continuations, reference.continuations)
    return result
