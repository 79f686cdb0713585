"""quality: what this run's optimizations cost in output quality, on trained weights, against the reference model
(eager, unquantized, unconverted PyTorch, same dtype). Causal LMs: perplexity over a fixed text, top-1 agreement,
KL divergence, greedy continuations; encoders: pooled-embedding cosine and label agreement (runner/quality/)."""

from __future__ import annotations

import logging

from runner.agreement import quality_tolerance, reference_changes
from runner.config.model import Task
from runner.context import RunContext
from runner.distributed.tp import enabled as tp_enabled
from runner.models.tokenizer import load_tokenizer
from runner.quality import causal, encoder, reference
from runner.quality.text import evaluation_text
from runner.record import Quality as QualitySection
from runner.stages.base import Stage, stage

log = logging.getLogger(__name__)
AGAINST = "eager, unquantized, unconverted PyTorch model"


@stage("quality")
class Quality(Stage):
    uses_reference = True

    def run(self, ctx: RunContext) -> RunContext:
        reason = skip_reason(ctx)
        section = QualitySection.from_dict({"skipped": reason} if reason else measure(ctx))
        ctx.record.quality = section
        if section.passed is False:
            log.warning("quality check failed: %s", section.check)
        return ctx


def skip_reason(ctx: RunContext) -> str | None:
    cfg = ctx.cfg
    if not cfg.quality.enabled:
        return "quality.enabled=false"
    if (ctx.record.model and ctx.record.model.weights) != "pretrained":
        return "random weights: their perplexity and agreement say nothing about an optimization (docs/quality.md)"
    if tp_enabled(cfg.hardware):
        return "tensor parallel: each rank holds a shard of the logits"
    return None


def _key(ctx: RunContext, **more) -> dict:
    return {
        "weights": ctx.record.model.weights_source,
        "task": ctx.cfg.model.task.value,
        "device": ctx.device.type,
        **more,
    }


def measure(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    try:
        tokenizer = load_tokenizer(cfg.model)
    except (OSError, ValueError) as error:  # a checkpoint saved without its tokenizer: no text to score
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return {"skipped": f"the checkpoint has no usable tokenizer ({type(error).__name__}: {first})"}
    is_reference = not reference_changes(cfg)
    if cfg.model.task == Task.causal_lm:
        section = _causal(ctx, tokenizer, is_reference)
    else:
        section = _encoder(ctx, tokenizer, is_reference)
    if "skipped" in section:
        return section
    limit, basis = quality_tolerance(cfg)
    if cfg.model.task == Task.causal_lm:
        measured, passed = section["perplexity_increase_relative"], section["perplexity_increase_relative"] <= limit
        check = f"relative perplexity increase {measured:.4f} <= {limit} ({basis})"
    else:
        measured = section["cosine_similarity_min"]
        passed = measured >= limit and section.get("label_agreement", 1.0) == 1.0
        check = f"pooled cosine similarity min {measured:.5f} >= {limit} ({basis})"
    section.update(against=AGAINST, is_reference=is_reference, check=check, passed=passed)
    return section


def _causal(ctx: RunContext, tokenizer, is_reference: bool) -> dict:
    cfg, settings = ctx.cfg, ctx.cfg.quality
    text = evaluation_text(settings.text_file, cfg.scenario.text)
    body = text.text if settings.max_tokens is None else text.text[: settings.max_tokens * 16]  # tokenize a prefix
    ids = tokenizer(body, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    if settings.max_tokens is not None:
        ids = ids[: settings.max_tokens]
    length = cfg.scenario.sequence_length
    windows = causal.chunks(ids, length)
    if windows.numel() == 0:
        return {"skipped": f"the evaluation text has {ids.numel()} tokens, less than scenario.sequence_length={length}"}
    text_record = {"source": text.source, "sha256": text.sha256, "tokens": windows.numel(), "chunk_length": length}
    key = _key(ctx, text=text.sha256, tokens=windows.numel(), chunk=length, top_k=causal.TOP_K,
               prompts=causal.PROMPTS, new_tokens=settings.new_tokens)  # fmt: skip
    path = reference.path_for(cfg.model, key)
    stored = reference.load(path) if settings.cache_reference else None
    cached = stored is not None
    if stored is None:
        if is_reference:
            scores = _causal_scores(ctx.backend, windows, cfg.scenario.batch_size, tokenizer, settings.new_tokens)
        else:
            backend = ctx.reference()  # the compare stage's, when it ran just before
            scores = _causal_scores(backend, windows, cfg.scenario.batch_size, tokenizer, settings.new_tokens)
        stored = {k: getattr(scores, k) for k in ("nll", "top_ids", "top_logprobs", "continuations")}
        reference.store(path, stored)
    ref = causal.CausalScores(**stored)
    if is_reference and not cached:
        run, at_reference = ref, ref.top_logprobs
    else:
        run, at_reference = causal.score(ctx.backend, windows, cfg.scenario.batch_size, ref)
        if settings.new_tokens > 0:
            run.continuations = causal.continuations(ctx.backend, tokenizer, settings.new_tokens)
    result = causal.compare(run, ref, at_reference)
    if "greedy" in result:
        result["greedy"]["new_tokens"] = settings.new_tokens
    return {"kind": "causal_lm", "text": text_record, "reference_cached": cached, **result}


def _causal_scores(backend, windows, batch_size: int, tokenizer, new_tokens: int) -> causal.CausalScores:
    scores, _ = causal.score(backend, windows, batch_size)
    if new_tokens > 0:
        scores.continuations = causal.continuations(backend, tokenizer, new_tokens)
    return scores


def _encoder(ctx: RunContext, tokenizer, is_reference: bool) -> dict:
    classifier = ctx.cfg.model.task == Task.sequence_classification
    path = reference.path_for(ctx.cfg.model, _key(ctx, sentences=encoder.SENTENCES))
    stored = reference.load(path) if ctx.cfg.quality.cache_reference else None
    cached = stored is not None
    run = encoder.outputs(ctx.backend, tokenizer, classifier)
    if stored is None:
        if is_reference:
            stored = {"outputs": run}
        else:
            stored = {"outputs": encoder.outputs(ctx.reference(), tokenizer, classifier)}
        reference.store(path, stored)
    result = encoder.compare(run, stored["outputs"], classifier)
    return {"kind": "classifier" if classifier else "embeddings", "reference_cached": cached, **result}
