"""One forward pass over batch_size x sequence_length tokens, timed call by call."""

from __future__ import annotations

from runner.measure.stats import summarize
from runner.models.inputs import token_counts
from runner.progress import steps
from runner.scenarios.base import SCENARIOS, Scenario


@SCENARIOS.register("forward")
class Forward(Scenario):
    name = "forward"

    def run_once(self):
        return self.backend.forward(self.ctx.inputs)

    def measure(self) -> dict:
        clock = self.backend.clock()
        latencies = []
        with self.backend.inference_context():
            call = self.backend.prepare_forward(self.ctx.inputs)  # bindings and buffers: outside the window
            for _ in steps(range(self.scenario.iterations), "forward"):
                start = clock.mark()
                call()
                end = clock.mark()
                latencies.append(clock.seconds(start, end))
        latency = summarize(latencies, "s")
        tokens = token_counts(self.ctx.inputs)
        return {
            "forward": {
                "latency": latency,
                "throughput": {
                    "samples_per_s": {"value": self.scenario.batch_size / latency["mean"], "unit": "samples/s"},
                    "tokens_per_s": {"value": tokens["total_tokens"] / latency["mean"], "unit": "tokens/s"},
                    "real_tokens_per_s": {"value": tokens["real_tokens"] / latency["mean"], "unit": "tokens/s"},
                },
            },
            "tokens": tokens,
        }
