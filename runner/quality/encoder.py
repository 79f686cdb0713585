"""Encoders: pooled embeddings (feature extraction) or predicted labels (classifiers) of a fixed set of sentences,
against the reference's."""

from __future__ import annotations

import torch

SENTENCES = (
    "The weather is lovely today.",
    "He drove to the stadium in his new car.",
    "A man is playing a guitar on the street.",
    "The stock market fell sharply after the announcement.",
    "I absolutely loved this film, the acting was superb.",
    "This was the worst meal I have ever had.",
    "Photosynthesis converts light energy into chemical energy.",
    "The committee postponed its decision until next week.",
    "Cats often sleep for more than twelve hours a day.",
    "Please remember to water the plants while I am away.",
    "The new phone's battery barely lasts half a day.",
    "Quantum computers use qubits instead of classical bits.",
    "She won the chess tournament without losing a single game.",
    "The museum is closed on Mondays and public holidays.",
    "Honestly, the service was slow but the staff were friendly.",
    "Rain is expected over the mountains this weekend.",
)


def outputs(backend, tokenizer, classifier: bool) -> torch.Tensor:
    """[sentences, hidden] mean-pooled last hidden states, or [sentences, labels] logits of a classifier."""
    encoded = tokenizer(list(SENTENCES), return_tensors="pt", padding=True)
    device = backend.input_device()
    inputs = {"input_ids": encoded["input_ids"].to(device), "attention_mask": encoded["attention_mask"].to(device)}
    with backend.inference_context():
        output = backend.forward(inputs).float().cpu()
    if classifier:
        return output
    mask = encoded["attention_mask"][..., None].float()
    return (output * mask).sum(1) / mask.sum(1)


def compare(run: torch.Tensor, reference: torch.Tensor, classifier: bool) -> dict:
    cosine = torch.nn.functional.cosine_similarity(run, reference, dim=-1)
    result = {
        "sentences": len(SENTENCES),
        "cosine_similarity_mean": float(cosine.mean()),
        "cosine_similarity_min": float(cosine.min()),
    }
    if classifier:
        result["label_agreement"] = float((run.argmax(-1) == reference.argmax(-1)).float().mean())
        probabilities = run.softmax(-1) - reference.softmax(-1)
        result["max_probability_diff"] = float(probabilities.abs().max())
    return result
