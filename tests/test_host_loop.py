"""The runner's generate keeps the host's share of a decode step small without changing a token: one logits processor
makes the length exact (instead of transformers' two min_new_tokens processors), and with a
static cache the decode steps' attention masks are left to the model (built inside the compiled step) for inputs
without padding."""

from __future__ import annotations

import dataclasses

import torch
from transformers import GenerationConfig, LogitsProcessorList
from transformers.generation import logits_process

from runner.backends.pytorch.host_loop import ExactLength, decode_masks, decode_masks_in_graph, eos_ids
from runner.config.load import to_run_config
from tests.conftest import compose_config
from tests.test_fused_projections import tiny_llama


def prompt(rows: int = 1) -> dict:
    ids = torch.randint(3, 256, (rows, 10), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def compiled_cfg(*overrides: str):
    cfg = to_run_config(compose_config(["hardware=cpu", "scenario=generate", *overrides]))
    return dataclasses.replace(cfg, convert=dataclasses.replace(cfg.convert, compile=True))


def test_exact_length_gives_transformers_min_new_tokens_tokens_with_one_processor(monkeypatch):
    model, inputs = tiny_llama(), prompt()
    free = model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=0)
    eos = [int(free[0, 12]), int(free[0, 15])]  # tokens greedy decoding picks: masking them changes the sequence
    model.generation_config.eos_token_id = eos
    called: list[list[str]] = []
    original = logits_process.LogitsProcessorList.__call__

    def spy(self, input_ids, scores, **kwargs):
        called.append([type(p).__name__ for p in self])
        return original(self, input_ids, scores, **kwargs)

    monkeypatch.setattr(logits_process.LogitsProcessorList, "__call__", spy)
    steps = []
    transformers_way = model.generate(
        **inputs, max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=0, eos_token_id=eos
    )
    called.clear()
    exact = GenerationConfig(max_new_tokens=12, do_sample=False, pad_token_id=0, eos_token_id=eos)
    runners_way = model.generate(
        **inputs,
        generation_config=exact,
        logits_processor=LogitsProcessorList([ExactLength(lambda: steps.append(1), eos_ids(model.generation_config))]),
    )
    assert called[0] == ["ExactLength"] and len(steps) == 12
    assert torch.equal(runners_way, transformers_way) and runners_way.shape[1] == 10 + 12
    assert not torch.equal(runners_way, free)  # the masked tokens were wanted, and never came
    assert not set(runners_way[0, 10:].tolist()) & set(eos)


def test_exact_length_masks_only_ids_the_vocabulary_has():
    scores = torch.zeros(2, 8)
    out = ExactLength(lambda: None, [3, 99])(None, scores)
    assert out[:, 3].eq(-torch.inf).all() and torch.isfinite(out[:, [0, 1, 2, 4, 5, 6, 7]]).all()
    assert eos_ids(GenerationConfig(eos_token_id=2)) == [2] and eos_ids(GenerationConfig()) == []
    assert ExactLength(lambda: None, [])(None, torch.zeros(1, 4)).eq(0).all()


def test_decode_steps_get_no_host_mask_and_the_same_tokens(monkeypatch):
    from transformers import masking_utils

    model, inputs = tiny_llama(), prompt()
    built: list[int] = []  # query lengths of the masks transformers' builder made
    original = masking_utils.create_masks_for_generate

    def counted(**kwargs):
        built.append(kwargs["inputs_embeds"].shape[1])
        return original(**kwargs)

    monkeypatch.setattr(masking_utils, "create_masks_for_generate", counted)
    monkeypatch.setattr("transformers.generation.utils.create_masks_for_generate", counted)
    static = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0, "cache_implementation": "static"}
    expected = model.generate(**inputs, **static)
    assert built == [10] + [1] * 7  # transformers: the prompt's mask, then one per decode step, on the host
    built.clear()
    in_graph, what = decode_masks(compiled_cfg(), model, inputs)
    assert in_graph and what == "built inside the compiled decode step"
    with decode_masks_in_graph(model, in_graph):
        tokens = model.generate(**inputs, **static)
    assert built == [10] and torch.equal(tokens, expected)  # the prompt's mask only; the model built the others
    assert "create_masks_for_generate" not in vars(model)  # the model is left as it was


def test_the_model_is_left_as_it_was_after_an_error_and_an_own_builder_is_put_back():
    model = tiny_llama()
    try:
        with decode_masks_in_graph(model, True):
            raise RuntimeError("generation failed")
    except RuntimeError:
        pass
    assert "create_masks_for_generate" not in vars(model)
    mine = object()
    model.create_masks_for_generate = mine
    with decode_masks_in_graph(model, True):
        assert model.create_masks_for_generate is not mine
    assert model.create_masks_for_generate is mine


def test_padded_inputs_the_option_off_and_models_with_their_own_masks_keep_transformers_masks():
    model = tiny_llama()
    padded = prompt(2)
    padded["attention_mask"][0, :3] = 0
    assert decode_masks(compiled_cfg(), model, padded) == (False, "built on the host each decode step (padded inputs)")
    off = compiled_cfg("convert.compile_options.masks_in_graph=false")
    assert decode_masks(off, model, prompt()) == (False, "built on the host each decode step (transformers' default)")
    plain = to_run_config(compose_config(["hardware=cpu", "scenario=generate"]))  # no compiled step: no static cache
    assert decode_masks(plain, model, prompt())[0] is False

    class OwnInputs(type(model)):  # as Bloom on transformers 5.17: it builds its mask in its own preparation
        def prepare_inputs_for_generation(self, *args, **kwargs):
            return super().prepare_inputs_for_generation(*args, **kwargs)

    model.__class__ = OwnInputs
    assert decode_masks(compiled_cfg(), model, prompt()) == (
        False, "built on the host each decode step (OwnInputs prepares its own inputs)"
    )  # fmt: skip
