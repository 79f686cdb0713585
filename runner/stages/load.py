"""load: build the backend's model and the measured inputs."""

from __future__ import annotations

import logging

from runner.backends import registry as backends
from runner.context import RunContext
from runner.models.inputs import random_inputs, text_inputs, token_counts
from runner.models.tokenizer import load_tokenizer
from runner.stages.base import Stage, stage

log = logging.getLogger(__name__)


@stage("load")
class Load(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        ctx.backend = backends.create(ctx)
        info = ctx.backend.load()
        ctx.record["model"] = info
        ctx.device = ctx.backend.input_device()
        if info["weights"] == "random" and ctx.cfg.model.weights.value == "auto":
            log.warning("model %s: %s", info["name"], info["weights_reason"])
        ctx.inputs = build_inputs(ctx, info.get("vocab_size"))
        ctx.record["inputs"] = {**token_counts(ctx.inputs), **ctx.record.get("inputs", {})}
        return ctx


def build_inputs(ctx: RunContext, vocab_size: int | None) -> dict:
    scenario = ctx.cfg.scenario
    if scenario.text is not None:
        tokenizer = load_tokenizer(ctx.cfg.model)
        inputs = text_inputs(scenario, tokenizer)
        note_truncated_text(ctx, len(tokenizer(scenario.text)["input_ids"]))
    else:
        pad = ctx.cfg.model.architecture.get("pad_token_id") or 0
        inputs = random_inputs(scenario, vocab_size or 1000, pad, seed=ctx.cfg.model.seed)
    return {k: v.to(ctx.device) for k, v in inputs.items()}


def note_truncated_text(ctx: RunContext, text_tokens: int) -> None:
    """A text longer than scenario.sequence_length is cut to it (the measured shape is the sequence length): said
    loudly and recorded, not refused, since telling needs the tokenizer, which validation does not load."""
    length = ctx.cfg.scenario.sequence_length
    ctx.record["inputs"] = {"text_tokens": text_tokens, "text_truncated": text_tokens > length}
    if text_tokens > length:
        message = (
            f"scenario.text is {text_tokens} tokens; only its first {length} (scenario.sequence_length) are "
            f"measured: raise scenario.sequence_length to {text_tokens} to use all of it"
        )
        log.warning(message)
        ctx.record.setdefault("warnings", []).append(message)
