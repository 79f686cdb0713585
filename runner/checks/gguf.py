"""Check of model.gguf_file: a file transformers' GGUF loader can read (its metadata only), before anything loads."""

from __future__ import annotations

from runner.checks.base import check
from runner.config.model import Weights
from runner.config.run import RunConfig


@check
def gguf_file_readable(cfg: RunConfig) -> None:
    if not cfg.model.gguf_file or cfg.model.weights == Weights.random:
        return
    from runner.models import gguf

    gguf.inspect(gguf.locate(cfg.model))
