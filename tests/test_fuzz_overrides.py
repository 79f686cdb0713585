"""Fuzz: hundreds of generated bad overrides, each through the CLI's own door in-process (runner.__main__.cli with
Hydra's run replaced by a stub that fails the test if reached): every one exits 2 with an `error:` line, and none
with a traceback. tests/test_hardening.py runs the real `python -m runner` on a few to prove the exit status."""

from __future__ import annotations

import itertools
import sys

import pytest

import runner.__main__ as entry
from runner.config import SCHEMAS
from runner.overrides import _group_fields

# key -> bad values (the wrong type, out of range, not an option)
BAD_VALUES = {
    "scenario.batch_size": ["0", "-1", "abc", "1.5"],
    "scenario.sequence_length": ["0", "-8", "x"],
    "scenario.iterations": ["0", "-3", "many"],
    "scenario.warmup_runs": ["-1", "two"],
    "scenario.padding_ratio": ["1.0", "-0.1", "2", "half"],
    "scenario.padding_side": ["middle", "1"],
    "scenario.new_tokens": ["zero"],
    "hardware.threads": ["0", "-2", "many"],
    "hardware.device": ["-1", "gpu"],
    "hardware.num_gpus": ["-1", "some"],
    "hardware.offload": ["maybe"],
    "roofline.peak_tflops": ["-1", "0", "fast"],
    "roofline.bandwidth_gbs": ["-5", "0", "wide"],
    "model.dtype": ["bf16", "fp8", "int4", "1"],
    "model.weights": ["downloaded", "none"],
    "model.task": ["chat", "1"],
    "model.package": ["os", "subprocess", "json", "antigravity"],
    "model.architecture.hidden_size": ["-64", "0"],
    "model.architecture.num_hidden_layers": ["-1", "0"],
    "model.architecture.vocab_size": ["0", "-100"],
    "quant.bits": ["3", "16", "four"],
    "quant.bnb_4bit_quant_type": ["nf8", "int4"],
    "attention.implementation": ["flash", "xformers"],
    "pipeline.stages": ["[]", "[infer]", "[warmup,load]", "[load,infr]"],
    "name": ["../../x", "a/b", "..", "''"],
    "save.directory": ["/abs/path", "../../x", "a/../../b", "."],
    "timeout_s": ["-1", "0", "soon"],
    "isolate": ["sometimes", "2"],
    "report.baseline": ["[attention]", "[=eager]"],
}
# schema keys misspelt, as `key=value` and as `+key=value` (Hydra's own message drops the hint for the latter)
TYPOS = [
    "model.dtyp",
    "model.wieghts",
    "scenario.batchsize",
    "scenario.seq_len",
    "hardware.thread",
    "quant.bit",
    "attention.implementaton",
    "pipeline.stage",
    "roofline.peak",
    "save.dir",
    "compare.enable",
    "nmae",
    "timeout",
    "resum",
]
ARCHITECTURE_TYPOS = ["hiden_size", "num_layers", "vocab", "intermediate", "num_heads"]
GROUP_TYPOS = ["quant=4bitt", "quant=base_quant", "model=tiny-lama", "attention=fa5", "hardware=gpu", "scenario=gen"]
GROUP_TYPOS += ["backend=onnx", "pipeline=fast", "experiment=nothing", "hydra/launcher=slurmm", "model=base_model"]
SYNTAX = ["a=[1", "=x", "scenario.batch_size=${", "x=}", "model.dtype='", "key", "~~quant", "+=1", "a=b=c"]
SYNTAX += ["scenario.batch_size=1,2", "hardware=cpu,cuda"]  # sweeps without --multirun: Hydra's ambiguity error
HYDRA_TARGETS = [
    ["+hydra.callbacks.x._target_=os.makedirs", "+hydra.callbacks.x.name=/tmp/runner-fuzz-made-this"],
    ["+hydra.callbacks.x._target_=os.system", "+hydra.callbacks.x.command=true"],
    ["hydra.callbacks.sweep_report._target_=builtins.print"],
    ["hydra.launcher._target_=os.getcwd"],
    ["hydra.sweeper._target_=os.getcwd"],
    ["+hydra.job_logging.handlers.x.class=os.system"],
]
SWEEPS = [["-m", "quant=none,base_quant"], ["-m", "model=tiny-llama,base_model"], ["-m", "scenario.batchsize=1,2"]]
COMBOS = [  # valid values that cannot run together
    ["model=tiny-bert", "scenario.sequence_length=1024"],
    ["model=tiny-bert", "scenario=generate"],
    ["hardware=tp", "hardware.num_gpus=0"],
    ["hardware=tp", "hardware.num_gpus=1"],
    ["scenario=generate", "scenario.new_tokens=0"],
    ["model=tiny-bert", "scenario.sequence_length=100000"],  # learned positions: 512 (rotary models run longer)
    ["quant=4bit", "backend=onnxruntime"],
    ["convert.compile=true"],
    ["hardware.max_memory={0:1GB}"],
    ["timeout_s=5", "isolate=false"],
]


def generated_typos() -> list[str]:
    """Every key of every group schema with a letter dropped (or, for one-letter-shorter clashes, doubled)."""
    found = []
    for group in SCHEMAS:
        fields = _group_fields(group)
        for name in sorted(fields):
            typo = name[:-1] if name[:-1] not in fields else name + name[-1]
            found.append(f"{group}.{typo}")
    return found


def bad_command_lines() -> list[list[str]]:
    lines = [[f"{key}=1"] for key in generated_typos()]
    lines += [[f"{key}={value}"] for key, values in BAD_VALUES.items() for value in values]
    lines += [[f"{prefix}{key}=1"] for key, prefix in itertools.product(TYPOS, ("", "+", "++"))]
    lines += [[f"+model.architecture.{key}=96"] for key in ARCHITECTURE_TYPOS]
    lines += [[g] for g in GROUP_TYPOS] + [[s] for s in SYNTAX] + HYDRA_TARGETS + COMBOS + SWEEPS
    return [line if any(o.startswith("hardware") for o in line) else [*line, "hardware=cpu"] for line in lines]


LINES = bad_command_lines()


def test_there_are_at_least_200():
    assert len(LINES) >= 200


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    """The CLI's entry point, stopped before Hydra runs the job: a bad command line must exit 2 before that."""

    def never(*_, **__):
        raise AssertionError("the command line passed every check and would have run")

    return never


@pytest.mark.parametrize("line", LINES, ids=[" ".join(line)[:60] for line in LINES])
def test_bad_override_exits_2_without_a_traceback(line, door, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(entry, "main", door)
    monkeypatch.setattr(sys, "argv", ["runner", *line])
    with pytest.raises(SystemExit) as exit_:
        entry.cli()
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # refused before any folder was made
