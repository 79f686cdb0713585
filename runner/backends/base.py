"""What every backend offers the stages and scenarios."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from runner.context import RunContext
from runner.measure.timer import DeviceClock
from runner.registry import Registry


class Backend:
    name: ClassVar[str]
    # torch.compile's first call (compilation, graph capture, one generation), as the backend that compiles lazily
    # saw it; the convert stage records it in the `convert` section
    compiled: dict[str, Any] | None = None

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg

    def load(self) -> dict[str, Any]:
        """Load the model; return the `model` section of the record."""
        raise NotImplementedError

    def forward(self, inputs: dict) -> torch.Tensor:
        """One forward pass; returns the model's main output (logits, or last hidden state)."""
        raise NotImplementedError

    def generate(self, inputs: dict, new_tokens: int, on_step) -> torch.Tensor:
        """Greedy generation of exactly `new_tokens` tokens; `on_step()` is called once per token, as
        soon as that token's logits exist (the first call marks the end of prefill)."""
        raise NotImplementedError(f"backend {self.name!r} cannot generate")

    def prepare_forward(self, inputs: dict) -> Callable[[], torch.Tensor]:
        """The measured forward pass: one-off setup (bindings, buffers) is done here, before the clock starts;
        each call of the result is one forward pass."""
        return lambda: self.forward(inputs)

    def prepare_generate(self, inputs: dict, new_tokens: int) -> Callable[[Callable[[], None]], torch.Tensor]:
        """The measured generation, its one-off setup done here; the result takes `on_step` as `generate` does."""
        return lambda on_step: self.generate(inputs, new_tokens, on_step)

    def convert_record(self) -> dict[str, Any]:
        """What the backend adds to the `convert` section of the record, which the convert stage writes (a backend
        writes no section itself): backend=onnxruntime, its export (`onnx`)."""
        return {}

    def input_device(self) -> torch.device:
        """Where the measured batch goes (a model split over GPUs takes it where its embeddings are)."""
        return self.ctx.device

    def label_names(self) -> dict | None:
        """Class index -> label of a classifier, for the predictions section; None where there are none."""
        return None

    def inference_context(self):
        """Entered around warmup and measured inference (a forced SDPA kernel, for instance)."""
        return contextlib.nullcontext()

    def devices(self) -> list[torch.device]:
        return [self.ctx.device]

    def clock(self) -> DeviceClock:
        """An event on every GPU the model runs on (a split model: each of them); on the CPU alone, the host clock."""
        return DeviceClock(self.devices())

    def save(self, directory: Path) -> None:
        raise NotImplementedError(f"backend {self.name!r} cannot save a model")

    def unload(self) -> None:
        """Free the model's memory."""


BACKENDS: Registry[type[Backend]] = Registry("backend")
