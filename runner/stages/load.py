"""load: build the backend's model and the measured inputs."""

from __future__ import annotations

import logging

from runner.backends import registry as backends
from runner.context import RunContext
from runner.models.inputs import random_inputs, text_inputs, token_counts
from runner.models.tokenizer import load_tokenizer
from runner.record import Model, TokenCounts
from runner.stages.base import Stage, stage

log = logging.getLogger(__name__)


@stage("load")
class Load(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        ctx.backend = backends.create(ctx)
        info = ctx.backend.load()
        model = ctx.record.model = Model.from_dict(info)
        ctx.device = ctx.backend.input_device()
        if model.weights == "random" and ctx.cfg.model.weights.value == "auto":
            log.warning("model %s: %s", model.name, model.weights_reason)
        ctx.inputs, text_tokens = build_inputs(ctx, info.get("vocab_size"))
        inputs = TokenCounts.from_dict(token_counts(ctx.inputs))
        if text_tokens is not None:
            inputs.text_tokens, inputs.text_truncated = text_tokens, truncated(ctx, text_tokens)
        ctx.record.inputs = inputs
        if inputs.text_truncated:
            ctx.record.warnings = [truncation_warning(ctx, text_tokens)]
        return ctx


def build_inputs(ctx: RunContext, vocab_size: int | None) -> tuple[dict, int | None]:
    """The measured batch, and the length in tokens of scenario.text (None for random ids)."""
    scenario = ctx.cfg.scenario
    text_tokens = None
    if scenario.text is not None:
        tokenizer = load_tokenizer(ctx.cfg.model)
        inputs = text_inputs(scenario, tokenizer)
        text_tokens = len(tokenizer(scenario.text)["input_ids"])
    else:
        pad = ctx.cfg.model.architecture.get("pad_token_id") or 0
        inputs = random_inputs(scenario, vocab_size or 1000, pad, seed=ctx.cfg.model.seed)
    return {k: v.to(ctx.device) for k, v in inputs.items()}, text_tokens


def truncated(ctx: RunContext, text_tokens: int) -> bool:
    return text_tokens > ctx.cfg.scenario.sequence_length


def truncation_warning(ctx: RunContext, text_tokens: int) -> str:
    """A text longer than scenario.sequence_length is cut to it (the measured shape is the sequence length): said
    loudly and recorded, not refused, since telling needs the tokenizer, which validation does not load."""
    length = ctx.cfg.scenario.sequence_length
    message = (
        f"scenario.text is {text_tokens} tokens; only its first {length} (scenario.sequence_length) are "
        f"measured: raise scenario.sequence_length to {text_tokens} to use all of it"
    )
    log.warning(message)
    return message
