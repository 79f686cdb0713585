"""Every option of every group composes into a valid, typed run config."""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch

from runner.config.load import to_run_config
from runner.errors import ConfigError
from tests.conftest import CONF, compose_config

GROUPS = ["model", "quant", "attention", "backend", "hardware", "scenario", "pipeline"]
# what a GPU-only option says on a host without one (a kernel, a device, a count of them)
NEEDS_A_GPU = r"needs a CUDA GPU|only on CUDA GPUs|needs \d+ GPUs"
# what an option whose package is not installed says (gemlite: a GPU-host extra, outside [all])
NEEDS_A_PACKAGE = re.compile(r"needs (\w+): pip install 'runner\[\w+\]'")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option):
    cfg = compose_config([f"{group}={option}"])
    assert cfg[group].name == option
    try:
        typed = to_run_config(cfg)
    except ConfigError as e:  # only an option that needs a GPU this host lacks may fail, and it names both
        message = str(e)
        problems = [p.removeprefix("- ") for p in message.splitlines()]
        assert all(p.startswith(f"{group}={option} ") for p in problems), message
        for p in problems:  # beside the GPU: a package this host does not have, named with its extra
            missing = NEEDS_A_PACKAGE.search(p)
            assert missing is None or importlib.util.find_spec(missing.group(1)) is None, message
        if torch.cuda.is_available():
            assert not re.search(NEEDS_A_GPU, message), message
        else:
            assert re.search(NEEDS_A_GPU, message), message
        return
    assert getattr(typed, group).name == option


def test_every_group_has_options():
    for group in GROUPS:
        assert list((CONF / group).glob("*.yaml")), f"conf/{group} is empty"


def test_model_presets_carry_their_architecture():
    for path in sorted((CONF / "model").glob("*.yaml")):
        typed = to_run_config(compose_config([f"model={path.stem}", "hardware=cpu"]))
        assert typed.model.model_type and typed.model.architecture, path.stem
        if not path.stem.startswith("tiny-"):
            assert typed.model.hub_id, f"{path.stem} names no hub id"
