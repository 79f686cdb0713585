"""The measured batch: random token ids (seeded) or tokenized text, with an attention mask and padding."""

from __future__ import annotations

import torch

from runner.config.scenario import PaddingSide, ScenarioConfig


def padded_lengths(scenario: ScenarioConfig) -> list[int]:
    """Real (unpadded) tokens per row: each row carries `padding_ratio` of padding, rounded."""
    real = max(1, round(scenario.sequence_length * (1 - scenario.padding_ratio)))
    return [real] * scenario.batch_size


def random_inputs(scenario: ScenarioConfig, vocab_size: int, pad_token_id: int, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    shape = (scenario.batch_size, scenario.sequence_length)
    # ids avoid the low range where presets keep pad/bos/eos tokens
    input_ids = torch.randint(min(8, vocab_size - 1), vocab_size, shape, generator=generator)
    attention_mask = torch.ones(shape, dtype=torch.long)
    for row, real in enumerate(padded_lengths(scenario)):
        pad = scenario.sequence_length - real
        if pad == 0:
            continue
        if scenario.padding_side == PaddingSide.right:
            input_ids[row, real:], attention_mask[row, real:] = pad_token_id, 0
        else:
            input_ids[row, :pad], attention_mask[row, :pad] = pad_token_id, 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def text_inputs(scenario: ScenarioConfig, tokenizer) -> dict:
    tokenizer.padding_side = scenario.padding_side.value
    batch = tokenizer(
        [scenario.text] * scenario.batch_size,
        return_tensors="pt",
        padding="max_length",
        truncation=True,
        max_length=scenario.sequence_length,
    )
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def token_counts(inputs: dict) -> dict:
    mask = inputs["attention_mask"]
    return {
        "real_tokens": int(mask.sum()),
        "padded_tokens": int(mask.numel() - mask.sum()),
        "total_tokens": int(mask.numel()),
    }
