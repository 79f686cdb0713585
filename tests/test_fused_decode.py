"""convert.fused_decode: the runner's own decode step gives Transformers' greedy tokens (end-of-sequence ids excluded,
exactly new_tokens of them), through a job and on its own; its Triton kernels compute what the PyTorch reference
computes (Triton's interpreter on the CPU, the GPU where there is one); runs it cannot serve are refused before
loading, naming the key."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest
import torch

from runner.backends.pytorch.host_loop import ExactLength
from runner.convert import fused_projections
from runner.fused_decode.decoder import FusedDecoder
from tests.conftest import interpreted
from tests.test_attention import config_error


def tiny_llama(**changes):
    """A random float32 Llama of two layers with wide logits (tests/test_fused_projections.py's), any field changed."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    fields = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=256, initializer_range=0.2)  # fmt: skip
    config = LlamaConfig(**(fields | changes))
    return LlamaForCausalLM._from_config(config, attn_implementation="sdpa", dtype=torch.float32).eval()


def transformers_greedy(model, ids, new_tokens, eos) -> torch.Tensor:
    """Transformers' generate as the runner calls it: greedy, exactly new_tokens, the eos ids masked."""
    return model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
        pad_token_id=0, eos_token_id=eos, logits_processor=[ExactLength(lambda: None, eos)],
    )  # fmt: skip


def fused_greedy(model, ids, new_tokens, eos, ops=None) -> tuple[torch.Tensor, FusedDecoder]:
    conversion = fused_projections.convert(model)
    try:
        decoder = FusedDecoder(model, eos, ops=ops)
        steps = []
        output = decoder.generate({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, new_tokens,
                                  lambda: steps.append(1))  # fmt: skip
        assert len(steps) == new_tokens
        return output, decoder
    finally:
        conversion.reverse(model)


def prompt(length=9, seed=1) -> torch.Tensor:
    return torch.randint(3, 256, (1, length), generator=torch.Generator().manual_seed(seed))


@torch.inference_mode()
def test_the_fused_step_gives_transformers_greedy_tokens_on_the_cpu():
    model = tiny_llama()  # grouped queries: 4 query heads on 2 key/value heads
    ids = prompt()
    want = transformers_greedy(model, ids, 12, eos=[2])
    got, decoder = fused_greedy(model, ids, 12, eos=[2])
    assert torch.equal(got, want), (got, want)
    assert decoder.record["agreement"]["greedy_share"] == 1.0
    assert decoder.record["kernels_per_step"] == 5 * 2 + 2


@torch.inference_mode()
def test_a_longer_call_reallocates_and_still_gives_transformers_tokens():
    model = tiny_llama()
    conversion = fused_projections.convert(model)
    try:
        decoder = FusedDecoder(model, [2])
        for length, new in ((9, 6), (20, 12), (5, 3)):  # the second outgrows the buffers; the third fits them
            ids = prompt(length, seed=length)
            got = decoder.generate({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, new, lambda: None)
            assert torch.equal(got, transformers_greedy(model, ids, new, eos=[2])), length
        assert decoder.positions == 32
    finally:
        conversion.reverse(model)


@torch.inference_mode()
def test_end_of_sequence_tokens_are_never_picked_and_the_length_is_exact():
    model = tiny_llama()
    ids = prompt()
    free = transformers_greedy(model, ids, 12, eos=[])[0, 9:]
    eos = [int(free[3]), int(free[0])]  # tokens the model would pick: now excluded, as ExactLength excludes them
    want = transformers_greedy(model, ids, 12, eos=eos)
    got, _ = fused_greedy(model, ids, 12, eos=eos)
    assert torch.equal(got, want)
    assert got.shape == (1, 21) and not set(got[0, 9:].tolist()) & set(eos)


def test_a_job_decodes_with_the_fused_step_and_records_it(run_job):
    record = run_job("scenario=generate", "convert.fused_decode=true", "scenario.new_tokens=6")
    assert record["status"] == "ok", record.get("error")
    section = record["convert"]
    assert section["applied"] == ["fused_projections", "fused_decode"]
    assert section["fused_projections"]["chosen_by"].startswith("automatic: convert.fused_decode=true")
    fused = section["fused_decode"]
    assert fused["agreement"]["greedy_share"] == 1.0 and fused["agreement"]["tokens"] == 6
    assert fused["released"] is True and section["fused_projections"]["reversed"]["state_dict_restored"]
    assert record["measurements"]["generate"]["per_token_count_per_call"] == [5, 5, 5]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["model=tiny-falcon"], "model_type=falcon"),
        (["quant=8bit"], "quant=8bit"),
        (["quant=int8wo"], "quant=int8wo"),
        (["scenario.batch_size=2"], "scenario.batch_size=2"),
        (["scenario=forward"], "scenario=forward"),
        (["convert.compile=true", "hardware=cpu"], "convert.compile=true"),
        (["convert.fuse_projections=false"], "convert.fuse_projections=false"),
        (["scenario.padding_ratio=0.3"], "scenario.padding_ratio=0.3"),
        (["scenario.warmup_runs=0"], "scenario.warmup_runs=0"),
    ],
)
def test_runs_the_step_cannot_serve_are_refused_before_loading(overrides, named):
    base = ["scenario=generate"] if "scenario=forward" not in overrides else []
    message = config_error(*base, "convert.fused_decode=true", *overrides)
    assert named in message and "convert.fused_decode=true" in message


def test_a_refusal_is_one_line_and_exit_status_2(cli):
    done = cli("scenario=generate", "convert.fused_decode=true", "quant=8bit")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "quant=8bit" in done.stderr


# The whole decoder with the Triton kernels in Triton's interpreter (a fresh process: TRITON_INTERPRET is read at
# import), against Transformers' greedy tokens; float32, a partial head group (3 query heads a key/value head).
INTERPRETED = textwrap.dedent(
    """
    import torch
    from runner.fused_decode import kernels
    from tests.test_fused_decode import fused_greedy, prompt, tiny_llama, transformers_greedy
    with torch.inference_mode():
        model = tiny_llama(num_attention_heads=6, num_key_value_heads=2, hidden_size=96)
        ids = prompt(7)
        want = transformers_greedy(model, ids, 10, eos=[2])
        got, decoder = fused_greedy(model, ids, 10, eos=[2], ops=kernels)
        print(decoder.record["kernels"], bool(torch.equal(got, want)), got.tolist(), want.tolist())
    """
)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed (CPU PyTorch)")
def test_the_triton_step_gives_transformers_greedy_tokens_in_tritons_interpreter():
    stdout = interpreted(INTERPRETED)
    assert stdout.split()[:2] == ["triton", "True"], stdout


# The same with the runner's int4 and int8 weights (quant=int4wo_triton, int8wo_triton): runner/quant/triton_gemv.py's
# kernels with the step's norm, residual and SiLU * up (gate/up rows interleaved), one autotuning config each (the
# interpreter cannot time them); against Transformers' generate on the CPU, which multiplies by the dequantized weights.
INTERPRETED_QUANT = textwrap.dedent(
    """
    import torch
    from torchao.quantization import quantize_
    import runner.quant.triton_gemv as tg
    from runner.fused_decode import kernels
    from runner.quant.triton_weights import TritonWeightConfig
    from tests.test_fused_decode import fused_greedy, prompt, tiny_llama, transformers_greedy
    for kernel in (tg._int4_gemv, tg._int8_gemv):
        wanted = (4, 128, True)  # rows a program (two gate/up pairs), words a step, prefetch
        fields = ("BLOCK_N", "BLOCK_W", "PREFETCH")
        kernel.configs = [c for c in kernel.configs if tuple(c.kwargs[k] for k in fields) == wanted][:1]
    layers = lambda module, name: isinstance(module, torch.nn.Linear) and name != "lm_head"
    with torch.inference_mode():
        for bits in (4, 8):
            model = tiny_llama(num_attention_heads=6, num_key_value_heads=2, hidden_size=96)
            quantize_(model, TritonWeightConfig(bits=bits, group_size=32), filter_fn=layers)
            ids = prompt(7)
            want = transformers_greedy(model, ids, 10, eos=[2])
            got, decoder = fused_greedy(model, ids, 10, eos=[2], ops=kernels)
            print(decoder.record["products"].split()[0], bool(torch.equal(got, want)))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed (CPU PyTorch)")
def test_the_quantized_triton_step_gives_transformers_greedy_tokens_in_tritons_interpreter():
    stdout = interpreted(INTERPRETED_QUANT, timeout=900)
    assert stdout.split()[-4:] == ["int4", "True", "int8", "True"], stdout


# Single kernels against reference.py in the interpreter, where the step's small models do not reach: attention with
# several non-empty shares of the cache to merge (16 positions a block, up to 16 shares, grouped queries of 3 padded
# to 4), and the int4/int8 products with the norm, the in-place residual and SiLU * up over several loop steps.
INTERPRETED_KERNELS = textwrap.dedent(
    """
    import torch
    import runner.quant.triton_gemv as tg
    from runner.fused_decode import kernels, reference
    from runner.quant.triton_weights import TritonInt4Tensor, TritonInt8Tensor
    torch.manual_seed(0)
    worst = {"attend": 0.0, "int4": 0.0, "int8": 0.0}
    for q_heads, kv_heads, d, positions, pos, config in [
        (6, 2, 16, 128, 100, (16, 4, 1, 4)), (6, 2, 16, 128, 1, (16, 4, 1, 4)), (8, 2, 32, 300, 299, (16, 16, 2, 4)),
    ]:
        qkv = torch.randn((q_heads + 2 * kv_heads) * d)
        angle = torch.randn(positions, d // 2)
        cos, sin = torch.cat([angle.cos()] * 2, -1), torch.cat([angle.sin()] * 2, -1)
        cache = torch.randn(2, kv_heads, positions, d)
        outs = []
        for ops in (kernels, reference):
            k, v, out = cache[0].clone(), cache[1].clone(), torch.zeros(q_heads * d)
            extra = {"config": config, "scratch": kernels.attend_scratch(kv_heads, q_heads // kv_heads, d, config[1],
                     "cpu")} if ops is kernels else {}
            ops.attend(qkv, cos, sin, k, v, out, torch.tensor([pos], dtype=torch.int32), d**-0.5, q_heads, kv_heads,
                       d, **extra)
            outs.append((out, k, v))
        (o1, k1, v1), (o2, k2, v2) = outs
        assert torch.equal(k1, k2) and torch.equal(v1, v2), "the new key and value are cached as the reference caches"
        worst["attend"] = max(worst["attend"], float((o1 - o2).norm() / o2.norm()))
    for kernel in (tg._int4_gemv, tg._int8_gemv):
        fields = ("BLOCK_N", "BLOCK_W", "PREFETCH")
        kernel.configs = [c for c in kernel.configs if tuple(c.kwargs[f] for f in fields) == (4, 128, True)][:1]
    rows, k = 12, 2048  # int4: 256 words a row, two loop steps; int8: 512, four
    for bits, make in ((4, lambda w: TritonInt4Tensor.from_hp(w, 32)), (8, TritonInt8Tensor.from_hp)):
        x, g = torch.randn(k) + 0.5, torch.rand(k) + 0.5
        for glu in (False, True):
            w = torch.randn(2 * rows if glu else rows, k) * 0.05
            packed, dense = kernels.prepare(make(w), glu=glu), reference.prepare(make(w))
            for norm, residual in ((g, None),) if glu else ((g, None), (None, torch.randn(rows))):  # as the step
                got, want = torch.zeros(rows), torch.zeros(rows)
                for ops, weight, y in ((kernels, packed, got), (reference, dense, want)):
                    if residual is not None:
                        y.copy_(residual)
                    ops.gemv(x, weight, y, None, norm=norm, eps=1e-5, glu=glu,
                             residual=y if residual is not None else None)
                worst[f"int{bits}"] = max(worst[f"int{bits}"], float((got - want).norm() / want.norm()))
    print(worst["attend"], worst["int4"], worst["int8"])
    """
)


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed (CPU PyTorch)")
def test_split_attention_and_the_quantized_products_match_the_reference_in_tritons_interpreter():
    attend, int4, int8 = (float(v) for v in interpreted(INTERPRETED_KERNELS).split()[-3:])
    # float32 both sides: summation order (5e-7 seen), and the int kernels' levels read as 1 + level / 2**16 (int8: up
    # to 4e-4 seen, as in test_triton_quant.py); SiLU * up paired with the wrong rows, or a share left unmerged, is
    # wrong by tens of percent
    assert attend < 1e-5 and int4 < 1e-3 and int8 < 1e-3, (attend, int4, int8)


def test_a_job_decodes_int8_weights_with_the_fused_step(run_job):
    record = run_job("scenario=generate", "convert.fused_decode=true", "quant=int8wo_triton", "scenario.new_tokens=6")
    assert record["status"] == "ok", record.get("error")
    fused = record["convert"]["fused_decode"]
    assert fused["products"].startswith("int8 words") and fused["agreement"]["greedy_share"] == 1.0


@pytest.mark.gpu
def test_the_fused_step_on_the_gpu_gives_transformers_greedy_tokens():
    model = tiny_llama().cuda()
    ids = prompt().cuda()
    with torch.inference_mode():
        want = transformers_greedy(model, ids, 16, eos=[2])
        got, decoder = fused_greedy(model, ids, 16, eos=[2])
    assert decoder.record["kernels"] == "triton" and decoder.record["graph_captures"] == 1
    assert torch.equal(got, want)
    model_fused = fused_projections.convert(model)  # a longer prompt: new buffers, a second graph
    try:
        longer = prompt(30, seed=3).cuda()
        with torch.inference_mode():
            again = decoder.generate({"input_ids": longer, "attention_mask": torch.ones_like(longer)}, 16, lambda: 0)
            assert torch.equal(again, transformers_greedy(model, longer, 16, eos=[2]))
        assert decoder.record["graph_captures"] == 2
    finally:
        model_fused.reverse(model)


@pytest.mark.gpu
@torch.inference_mode()
def test_the_fused_step_in_bf16_is_as_close_to_float32_as_transformers_bf16():
    """bf16 rounds in other places than Transformers' kernels, so tokens may part at near-ties; the last step's logits
    must be as close to the float32 model's as Transformers' own bf16 forward is (within 1.5x)."""
    exact = tiny_llama(num_hidden_layers=4).cuda()
    model = tiny_llama(num_hidden_layers=4).to("cuda", torch.bfloat16)
    ids = prompt().cuda()
    got, decoder = fused_greedy(model, ids, 16, eos=[2])
    seen = got[:, :-1]  # the last step's logits predicted the last token from these
    want = exact(input_ids=seen).logits[0, -1]
    theirs = model(input_ids=seen).logits[0, -1].float()
    ours = decoder.logits.float()
    error = lambda x: float((x - want).norm() / want.norm())  # noqa: E731
    assert error(ours) < 1.5 * error(theirs) + 1e-3, (error(ours), error(theirs))


@pytest.mark.gpu
@pytest.mark.parametrize("quant", ["int4wo_triton", "int8wo_triton"])
def test_a_job_decodes_quantized_weights_with_the_fused_step_on_the_gpu(run_job, quant):
    widths = ("model.architecture.hidden_size=1024", "model.architecture.intermediate_size=2048")
    record = run_job("hardware=cuda", "scenario=generate", "convert.fused_decode=true", f"quant={quant}",
                     "model.dtype=bfloat16", "scenario.new_tokens=16", *widths, fast=False)  # fmt: skip
    assert record["status"] == "ok", record.get("error")
    fused = record["convert"]["fused_decode"]
    assert fused["kernels"] == "triton" and fused["products"].startswith(f"int{quant[3]} words")
    assert fused["graph_captures"] == 1
    # the random bf16 weights' near-ties part some tokens (§6s: 87-89 % on 7B shapes); a broken kernel parts them all
    assert fused["agreement"]["greedy_share"] >= 0.75, fused["agreement"]


@pytest.mark.gpu
def test_the_kernels_match_the_reference_on_7b_shapes_on_the_gpu():
    from runner.fused_decode import kernels, reference

    torch.manual_seed(0)
    dev, dt = torch.device("cuda"), torch.bfloat16
    for rows, k, glu, norm, residual in [(12288, 4096, False, True, False), (4096, 4096, False, False, True),
                                         (11008, 4096, True, True, False), (4096, 11008, False, False, True),
                                         (32000, 4096, False, True, False)]:  # fmt: skip
        w = (torch.randn(2 * rows if glu else rows, k, device=dev) * k**-0.5).to(dt)
        x = torch.randn(k, device=dev, dtype=dt)
        g = (torch.rand(k, device=dev) + 0.5).to(dt) if norm else None
        norm = g
        r = torch.randn(rows, device=dev, dtype=dt) if residual else None
        got, want = torch.empty(rows, device=dev, dtype=dt), torch.empty(rows, device=dev, dtype=dt)
        for ops, y in ((kernels, got), (reference, want)):
            if r is not None:
                y.copy_(r)  # the residual added in place, as the step adds it to h
            ops.gemv(x, w, y, kernels.gemv_config(k, glu=glu, norm=norm is not None), norm=g, eps=1e-5, glu=glu,
                     residual=y if r is not None else None)  # fmt: skip
        assert float((got.float() - want.float()).norm() / want.float().norm()) < 0.01, (rows, k, glu)
