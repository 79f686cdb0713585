"""A plugin is one place: backends are folders found by discovery, stages and scenarios are modules named like
them, validation imports configs only, and the job layers below runner/app.py never import it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runner.config import SCHEMAS
from runner.config.backend import BACKEND_CONFIGS, backend_folders
from runner.discovery import plugin_names
from runner.scenarios import SCENARIOS
from runner.stages import STAGES

ROOT = Path(__file__).resolve().parents[1]


def test_every_backend_folder_is_a_registered_schema_and_a_backend():
    from runner.backends.base import BACKENDS
    from runner.config.backend import import_backend_modules

    import_backend_modules("backend")
    assert backend_folders() == BACKEND_CONFIGS.names() == BACKENDS.names() == ["onnxruntime", "pytorch"]
    assert sorted(SCHEMAS["backend"]) == [f"base_{name}" for name in backend_folders()]
    for option in (ROOT / "conf" / "backend").glob("*.yaml"):
        assert f"base_{option.stem}" in option.read_text(), f"{option} does not extend its backend's schema"


def test_backends_declare_what_they_support():
    pytorch, onnxruntime = BACKEND_CONFIGS.get("pytorch"), BACKEND_CONFIGS.get("onnxruntime")
    assert pytorch.runs_torch_modules and not onnxruntime.runs_torch_modules


def test_every_scenario_declares_what_it_supports():
    from runner.config.model import Task
    from runner.config.scenario import SCENARIO_SUPPORT

    assert sorted(SCENARIO_SUPPORT) == SCENARIOS.names()
    assert SCENARIO_SUPPORT["generate"].tasks == (Task.causal_lm,) and SCENARIO_SUPPORT["forward"].tasks is None


@pytest.mark.parametrize(("package", "registry"), [("runner.stages", STAGES), ("runner.scenarios", SCENARIOS)])
def test_validation_finds_the_same_plugins_as_the_registry(package, registry):
    assert plugin_names(package) == registry.names()


def _modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return set(result.stdout.split())


def test_validating_a_config_imports_no_stage_scenario_or_backend_code():
    loaded = _modules_after(
        "from hydra import compose, initialize_config_dir\n"
        "from runner.config import register_configs\n"
        "from runner.config.load import to_run_config\n"
        "register_configs()\n"
        f"with initialize_config_dir(config_dir='{ROOT / 'conf'}', version_base='1.3'):\n"
        "    cfg = compose(config_name='config', overrides=['backend=onnxruntime', 'model.dtype=float32'])\n"
        "assert to_run_config(cfg).backend.name == 'onnxruntime'\n"
    )
    assert {"runner.checks.core", "runner.backends.onnxruntime.checks"} <= loaded
    execution = {"runner.stages", "runner.scenarios", "runner.pipeline", "runner.backends.base", "runner.execute"}
    # the conversions and the inputs: the attention checks import them only for the options and model types that
    # need them (runner.convert.attention, the table of conversions by model type, is a declaration)
    execution |= {"runner.convert.bettertransformer", "runner.convert.falcon_attention"}
    execution |= {"runner.convert.bloom_attention", "runner.convert.fused_attention", "runner.models.build"}
    execution |= {"runner.models.inputs"}
    assert not loaded & execution


@pytest.mark.parametrize("quant", ["8bit", "int8wo"])
def test_validating_a_quantized_config_imports_no_quantization_or_model_code(quant):
    """The checks read the methods' declarations: bitsandbytes, torchao, the census and model building stay out."""
    loaded = _modules_after(
        "from hydra import compose, initialize_config_dir\n"
        "from runner.config import register_configs\n"
        "from runner.config.load import to_run_config\n"
        "from runner.errors import ConfigError\n"
        "register_configs()\n"
        f"with initialize_config_dir(config_dir='{ROOT / 'conf'}', version_base='1.3'):\n"
        f"    cfg = compose(config_name='config', overrides=['quant={quant}', 'hardware=cpu', 'model=tiny-llama'])\n"
        "try:\n"
        "    to_run_config(cfg)\n"
        "except ConfigError:\n"  # refused on this host or not: every check ran
        "    pass\n"
    )
    assert {"runner.checks.quant", "runner.checks.attention", "runner.quant.base"} <= loaded
    # (torchao itself may load: Transformers' modeling_utils imports it when installed, and the attention check
    # reads the model class's flags; the runner's quantization code must not)
    heavy = {"bitsandbytes", "runner.quant.report", "runner.quant.sizes", "runner.quant.compat"}
    heavy |= {"runner.models.build", "runner.stages", "runner.backends.pytorch.backend", "runner.execute"}
    assert not loaded & heavy


def test_a_typo_on_the_command_line_is_answered_before_the_job_layer_loads():
    """`python -m runner quant=4bitt` exits 2 from the command line's checks; the job layer (every plugin and
    Transformers' modeling code, half of the 10 s such an answer took on a 2-core CPU) is not imported for it."""
    loaded = _modules_after(
        "import runpy\n"
        "sys.argv = ['runner', 'quant=4bitt']\n"
        "try:\n"
        "    runpy.run_module('runner', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 2, exit.code\n"
    )
    assert "runner.command_line" in loaded
    assert not loaded & {"runner.app", "runner.execute", "runner.stages", "transformers.modeling_utils"}


def test_unknown_stage_is_named_with_a_suggestion():
    from runner.checks.core import plugins_exist
    from runner.errors import ConfigError

    class Cfg:
        pipeline = type("P", (), {"stages": ["load", "infr"]})
        scenario = type("S", (), {"name": "forward"})
        backend = type("B", (), {"name": "pytorch"})

    with pytest.raises(ConfigError, match="unknown stage 'infr'. Did you mean 'infer'"):
        plugins_exist(Cfg)


@pytest.mark.parametrize("module", ["runner.isolation", "runner.distributed.launch", "runner.execute"])
def test_the_layers_below_the_job_layer_do_not_import_it(module):
    assert "runner.app" not in _modules_after(f"import {module}")
