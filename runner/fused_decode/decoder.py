"""FusedDecoder: greedy decoding of a Llama-architecture model with the runner's own decode step. Transformers runs
the prompt (its forward, its KV cache); the decoder copies the cache into its own buffers and runs every later token
as one step of its kernels (runner/fused_decode/kernels.py on CUDA, captured once as a CUDA graph and replayed per
token; runner/fused_decode/reference.py on the CPU). The step never returns to the host: the greedy token, its
embedding and the position are written on the GPU, so the host only queues replays.

A layer is five kernels, q/k/v with the input norm, attention with rotary and the cache write, o_proj with the
residual, gate/up with the norm and SiLU * up, down with the residual; after the last layer the final norm with
lm_head, and the pick of the token. Weights are the model's own tensors (q/k/v and gate/up as fused by
runner/convert/fused_projections.py), so the decoder adds only the cache, a rotary table and one token's buffers;
over the runner's int4/int8 weights (quant=int4wo_triton, int8wo_triton) also a copy of each gate/up weight with its
rows interleaved (kernels.prepare). On the H200, 7B shapes: bf16 3.70 ms/token (76 % of the bandwidth), int4 2.28,
int8 2.42 (docs/benchmarks.md §6s)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from runner.fused_decode import reference

KIND = "fused_decode"


@dataclass
class _Layer:
    qkv: torch.Tensor
    o: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor
    attention_norm: torch.Tensor
    mlp_norm: torch.Tensor


def _cached(past, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer `index`'s keys and values, (batch, kv heads, positions, head dim), from a Transformers cache (the output's
    `cache` since transformers 5.2x, `past_key_values` before: the GPU host's 5.17)."""
    layers = getattr(past, "layers", None)
    if layers is not None:
        return layers[index].keys, layers[index].values
    return past.key_cache[index], past.value_cache[index]


class FusedDecoder:
    def __init__(self, model, eos_ids: list[int], ops=None, pdl: bool = False) -> None:
        """ops: the module of the step's operations; by default the Triton kernels on CUDA, reference on the CPU
        (tests pass the kernels on the CPU, under Triton's interpreter). pdl: launch the kernels with programmatic
        dependent launch (Hopper): off, as the step ran 4 % slower with it on the H200 (3.944 against 3.794 ms a
        token, docs/benchmarks.md §6s), where the Linear layers alone read faster with it (§6r)."""
        config = model.config
        self.model = model
        self.device = model.lm_head.weight.device
        self.dtype = model.get_input_embeddings().weight.dtype
        self.cuda = self.device.type == "cuda"
        if ops is None and self.cuda:
            from runner.fused_decode import kernels as ops
        self.ops = ops or reference
        prepare = self.ops.prepare
        self.layers = [
            _Layer(
                prepare(layer.self_attn.qkv_proj.weight), prepare(layer.self_attn.o_proj.weight),
                prepare(layer.mlp.gate_up_proj.weight, glu=True), prepare(layer.mlp.down_proj.weight),
                layer.input_layernorm.weight, layer.post_attention_layernorm.weight,
            )  # fmt: skip
            for layer in model.model.layers
        ]
        attention = model.model.layers[0].self_attn
        self.q_heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.q_heads
        self.head_dim = attention.head_dim
        self.scale = float(attention.scaling)
        self.eps = float(model.model.layers[0].input_layernorm.variance_epsilon)
        self.hidden = config.hidden_size
        self.intermediate = config.intermediate_size
        self.embed = model.get_input_embeddings().weight
        self.final_norm = model.model.norm.weight
        self.lm_head = prepare(model.lm_head.weight)
        self.vocab = model.lm_head.weight.shape[0]  # its rows (a checkpoint may pad them past config.vocab_size)
        self.eos = torch.tensor(eos_ids or [-1], dtype=torch.long, device=self.device)  # never empty: a pointer
        self.n_eos = len(eos_ids)
        self.pdl = pdl and self.ops is not reference and self.cuda and self.ops.pdl_available(self.device)
        self.configs = {} if self.ops is reference else {
            "qkv": self.ops.gemv_config(self.hidden, norm=True),
            "o": self.ops.gemv_config(self.q_heads * self.head_dim),
            "gate_up": self.ops.gemv_config(self.hidden, glu=True, norm=True),
            "down": self.ops.gemv_config(self.intermediate),
            "lm_head": self.ops.gemv_config(self.hidden, norm=True),
            "attend": self.ops.attend_config(self.head_dim, self.q_heads // self.kv_heads, self.kv_heads),
        }  # fmt: skip
        self.positions = 0  # the buffers' length; 0: none yet
        self.graph: torch.cuda.CUDAGraph | None = None
        self.graph_checked: Any = False  # the graph (None on the CPU) whose tokens `agreement` checked last
        weight = model.model.layers[0].self_attn.qkv_proj.weight
        packed = {"TritonInt4Tensor": 4, "TritonInt8Tensor": 8}.get(type(getattr(weight, "data", weight)).__name__)
        self.record: dict[str, Any] = {
            "kind": KIND,
            "kernels": "pytorch (runner/fused_decode/reference.py)" if self.ops is reference else "triton",
            # the layers' products: the model's weights as they are, or the runner's int4/int8 words read by the
            # kernels of runner/quant/triton_gemv.py (their own configs: kernel_configs lists the bf16 kernels')
            "products": f"int{packed} words (runner/quant/triton_gemv.py)" if packed else str(self.dtype),
            "programmatic_dependent_launch": self.pdl,
            "kernels_per_step": 5 * len(self.layers) + 2,
            "layers": len(self.layers),
            # products: (rows a program, columns a tile, warps); attend: (positions a block, shares of the cache a
            # head, pipeline stages, warps)
            "kernel_configs": {k: list(v) for k, v in self.configs.items()},
            "graph_captures": 0,
        }

    def _allocate(self, positions: int) -> None:
        """Buffers for sequences of up to `positions` tokens, and the rotary table over those positions."""
        new = lambda *shape, dtype=self.dtype: torch.zeros(*shape, dtype=dtype, device=self.device)  # noqa: E731
        layers = len(self.layers)
        self.k_cache = new(layers, self.kv_heads, positions, self.head_dim)
        self.v_cache = new(layers, self.kv_heads, positions, self.head_dim)
        self.h = new(self.hidden)
        self.qkv = new((self.q_heads + 2 * self.kv_heads) * self.head_dim)
        self.attended = new(self.q_heads * self.head_dim)
        self.glu = new(self.intermediate)
        self.logits = new(self.vocab)
        self.ids = new(positions + 1, dtype=torch.long)
        self.pos = new(1, dtype=torch.int32)
        self.scratch = None if self.ops is reference else self.ops.attend_scratch(
            self.kv_heads, self.q_heads // self.kv_heads, self.head_dim, self.configs["attend"][1], self.device
        )  # fmt: skip
        at = torch.arange(positions, device=self.device).unsqueeze(0)
        cos, sin = self.model.model.rotary_emb(self.h.view(1, 1, -1), at)  # the model's own rotary, in its dtype
        self.cos, self.sin = cos[0].contiguous(), sin[0].contiguous()
        self.positions = positions
        self.graph = None
        self.record["kv_cache_bytes"] = 2 * self.k_cache.numel() * self.k_cache.element_size()

    def step(self) -> None:
        """One token: ids[pos] in, hidden state h its embedding; ids[pos + 1] out, h the next one's, pos + 1."""
        ops, pdl, c = self.ops, self.pdl, self.configs
        for index, layer in enumerate(self.layers):
            ops.gemv(self.h, layer.qkv, self.qkv, c.get("qkv"), norm=layer.attention_norm, eps=self.eps, pdl=pdl)
            ops.attend(
                self.qkv, self.cos, self.sin, self.k_cache[index], self.v_cache[index], self.attended, self.pos,
                self.scale, self.q_heads, self.kv_heads, self.head_dim, pdl=pdl, config=c.get("attend"),
                scratch=self.scratch,
            )  # fmt: skip
            ops.gemv(self.attended, layer.o, self.h, c.get("o"), residual=self.h, pdl=pdl)
            ops.gemv(self.h, layer.gate_up, self.glu, c.get("gate_up"), norm=layer.mlp_norm, eps=self.eps, glu=True,
                     pdl=pdl)  # fmt: skip
            ops.gemv(self.glu, layer.down, self.h, c.get("down"), residual=self.h, pdl=pdl)
        ops.gemv(self.h, self.lm_head, self.logits, c.get("lm_head"), norm=self.final_norm, eps=self.eps, pdl=pdl)
        ops.pick(self.logits, self.eos, self.n_eos, self.embed, self.h, self.ids, self.pos, pdl=pdl)

    def _capture(self) -> None:
        """Compile the kernels (one step on scratch state), then capture the step as a CUDA graph."""
        start = time.perf_counter()
        self.pos.zero_()
        self.step()
        torch.cuda.synchronize(self.device)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step()
        torch.cuda.synchronize(self.device)
        self.record["graph_captures"] += 1
        self.record.setdefault("first_capture_s", round(time.perf_counter() - start, 3))

    def prefill(self, inputs: dict) -> int:
        """Transformers' forward over the prompt; its cache copied into the decoder's, the first token picked.
        Returns the prompt's length."""
        ids = inputs["input_ids"]
        length = ids.shape[1]
        out = self.model(**inputs, use_cache=True, logits_to_keep=1)
        for index in range(len(self.layers)):
            keys, values = _cached(out["cache"] if "cache" in out else out["past_key_values"], index)
            self.k_cache[index, :, :length] = keys[0]
            self.v_cache[index, :, :length] = values[0]
        self.ids[:length] = ids[0]
        self.logits.copy_(out.logits[0, -1])
        self.pos.fill_(length - 1)
        self.ops.pick(self.logits, self.eos, self.n_eos, self.embed, self.h, self.ids, self.pos)
        return length

    def generate(self, inputs: dict, new_tokens: int, on_step) -> torch.Tensor:
        """Exactly new_tokens greedy tokens after the prompt (batch 1); `on_step()` once per token, as soon as the
        step that made it is queued. Returns (1, prompt + new_tokens) token ids."""
        mask = inputs.get("attention_mask")
        if inputs["input_ids"].shape[0] != 1 or (mask is not None and not bool(mask.all())):
            raise ValueError("the fused decode step takes one unpadded sequence")
        if new_tokens < 1:
            raise ValueError(f"new_tokens={new_tokens}: the fused decode step makes at least one token")
        length = inputs["input_ids"].shape[1]
        if self.positions < length + new_tokens:
            self._allocate(length + new_tokens)
        if self.cuda and self.ops is not reference and self.graph is None:
            self._capture()
        self.prefill(inputs)
        on_step()
        for _ in range(new_tokens - 1):
            self.graph.replay() if self.graph is not None else self.step()
            on_step()
        output = self.ids[: length + new_tokens].clone().unsqueeze(0)
        if self.graph_checked is not self.graph:  # each captured graph's first call (a warm-up), once
            self.record["agreement"] = self.agreement(length, output)
            self.graph_checked = self.graph
        return output

    def agreement(self, length: int, output: torch.Tensor) -> dict[str, Any]:
        """Whether each token the step made is Transformers' greedy pick: the model's own forward over the generated
        sequence (teacher forcing), its logits at every generated position, end-of-sequence ids excluded as the
        step excludes them. A token whose logit ties the best counts as the greedy pick."""
        new = output.shape[1] - length
        logits = self.model(input_ids=output, use_cache=False, logits_to_keep=new + 1).logits[0, :-1].float()
        eos = self.eos[: self.n_eos]
        logits[:, eos[(eos >= 0) & (eos < logits.shape[1])]] = float("-inf")
        best = logits.max(dim=-1).values
        gap = best - logits.gather(1, output[0, length:, None])[:, 0]
        return {
            "against": "Transformers' forward over the generated tokens (teacher forcing), its greedy pick",
            "tokens": new,
            "greedy_share": float((gap <= 0).float().mean()),
            "first_other_token": int((gap > 0).nonzero()[0, 0]) if bool((gap > 0).any()) else None,
            "max_logit_gap": float(gap.max()),
            "mean_best_logit": float(best.abs().mean()),
        }
