"""Greedy generation of exactly `new_tokens` tokens, with prefill, decode and per-token latency taken
fresh from every measured call (marks are reset per call, so per-token counts are new_tokens - 1)."""

from __future__ import annotations

from runner.errors import MeasurementError
from runner.measure.stats import summarize
from runner.models.inputs import token_counts
from runner.progress import steps
from runner.scenarios.base import SCENARIOS, Scenario


@SCENARIOS.register("generate")
class Generate(Scenario):
    name = "generate"

    def run_once(self):
        return self.backend.generate(self.ctx.inputs, self.scenario.new_tokens, on_step=lambda: None)

    def timed_call(self, clock, call) -> dict:
        marks = []  # one per generated token, fresh for this call
        start = clock.mark()
        output = call(lambda: marks.append(clock.mark()))
        end = clock.mark()
        expected = self.ctx.inputs["input_ids"].shape[1] + self.scenario.new_tokens
        if len(marks) != self.scenario.new_tokens or output.shape[1] != expected:
            raise MeasurementError(
                f"asked for {self.scenario.new_tokens} new tokens, generation produced "
                f"{output.shape[1] - self.ctx.inputs['input_ids'].shape[1]} ({len(marks)} steps)"
            )
        return {
            "end_to_end": clock.seconds(start, end),
            "prefill": clock.seconds(start, marks[0]),
            "decode": clock.seconds(marks[0], end),
            "per_token": [clock.seconds(a, b) for a, b in zip(marks, marks[1:], strict=False)],
        }

    def measure(self) -> dict:
        clock = self.backend.clock()
        calls = []
        with self.backend.inference_context():
            call = self.backend.prepare_generate(self.ctx.inputs, self.scenario.new_tokens)  # outside the window
            for _ in steps(range(self.scenario.iterations), "generate"):
                calls.append(self.timed_call(clock, call))
        batch, new = self.scenario.batch_size, self.scenario.new_tokens
        tokens = token_counts(self.ctx.inputs)
        e2e = summarize([c["end_to_end"] for c in calls], "s")
        prefill = summarize([c["prefill"] for c in calls], "s")
        decode = summarize([c["decode"] for c in calls], "s")
        per_token = summarize([t for c in calls for t in c["per_token"]], "s") if new > 1 else None
        return {
            "generate": {
                "end_to_end": e2e,
                "prefill": prefill,
                "decode": decode,
                "per_token": per_token,
                "per_token_count_per_call": [len(c["per_token"]) for c in calls],
                "throughput": {
                    "tokens_per_s": {
                        "value": batch * new / e2e["mean"],
                        "unit": "tokens/s",
                        "what": "generated tokens over end-to-end time",
                    },
                    "prefill_tokens_per_s": {
                        "value": tokens["real_tokens"] / prefill["mean"],
                        "unit": "tokens/s",
                        "what": "prompt tokens over prefill time",
                    },
                    # new_tokens=1 has no decode phase: no rate rather than a misleading 0 tokens/s
                    **(
                        {
                            "decode_tokens_per_s": {
                                "value": batch * (new - 1) / decode["mean"],
                                "unit": "tokens/s",
                                "what": "tokens after the first over decode time",
                            }
                        }
                        if new > 1
                        else {}
                    ),
                },
            },
            "tokens": {**tokens, "new_tokens_per_row": new},
        }
