"""Run folders of their own, configs that cannot name code, resume that compares configs, and Hydra's own command
line (-sc, --cfg) working: each class of issue 17, in-process where it can be, with a few real CLI runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runner.command_line import prepare
from runner.errors import ConfigError
from runner.results import finished_ok, write_json_atomic
from runner.run_dirs import claim
from tests.conftest import ROOT, compose_config


def _folder(argv: list[str]) -> str:
    return argv[-1].split("=", 1)[1].strip("'")


def test_runs_started_together_get_their_own_folders(tmp_path, monkeypatch):
    # what two runs started in the same second resolve their default folder to; the claim is an atomic mkdir
    first, second = (claim(tmp_path / "same", sweep=False, given=False, reuse=False) for _ in range(2))
    assert first != second and second.name == "same_2"


def test_default_folders_differ_in_the_same_second(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folders = {_folder(prepare(["hardware=cpu", "hydra.job.name=a"])) for _ in range(2)}
    assert len(folders) == 2


def test_an_existing_run_folder_is_refused_unless_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert _folder(prepare(["hardware=cpu", f"hydra.run.dir={run}"])) == str(run)
    with pytest.raises(ConfigError, match="already holds a run.*overwrite=true"):
        prepare(["hardware=cpu", f"hydra.run.dir={run}"])
    assert _folder(prepare(["hardware=cpu", f"hydra.run.dir={run}", "overwrite=true"])) == str(run)


def test_a_single_run_is_checked_once_at_the_door(tmp_path, monkeypatch):
    """The command line checks a single run before it claims the run's folder; the job Hydra then starts takes that
    typed config instead of checking it (a GGUF header read included) a second time."""
    import runner.checks
    from runner.job import Job

    monkeypatch.chdir(tmp_path)
    checked = []
    validate = runner.checks.validate
    monkeypatch.setattr(runner.checks, "validate", lambda run: checked.append(run) or validate(run))
    overrides = ["hardware=cpu", "scenario.batch_size=3"]
    prepare(overrides)
    job = Job.at_the_door(compose_config(overrides), tmp_path / "run", overrides)
    assert len(checked) == 1 and job.cfg is checked[0] and job.cfg.scenario.batch_size == 3
    again = Job.at_the_door(compose_config(overrides), tmp_path / "run2", overrides)  # not the command line's
    assert len(checked) == 2 and again.cfg is checked[1]


@pytest.mark.parametrize(
    "override, message",
    [
        ("name=../../x", "name='../../x' must be a plain label"),
        ("save.directory=/abs/path", "save.directory='/abs/path' must be a folder inside the run's folder"),
        ("save.directory=../../x", "save.directory='../../x' must be a folder inside the run's folder"),
    ],
)
def test_names_and_save_paths_stay_inside_the_run(override, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        prepare(["hardware=cpu", override])
    assert not list(tmp_path.iterdir())


def test_callbacks_are_the_runners_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = tmp_path / "made-by-a-callback"
    with pytest.raises(ConfigError, match="'os.makedirs' is not one of the runner's launchers"):
        prepare(["+hydra.callbacks.x._target_=os.makedirs", f"+hydra.callbacks.x.name={made}"])
    assert not made.exists()


def test_an_edited_replay_config_cannot_name_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    replay = tmp_path / "run" / ".hydra"
    replay.mkdir(parents=True)
    cfg = compose_config(["hardware=cpu"])
    container = json.loads(json.dumps(_plain(cfg)))
    container["hydra"] = {"callbacks": {"x": {"_target_": "os.makedirs", "name": str(tmp_path / "made")}}}
    (replay / "config.yaml").write_text(json.dumps(container))  # JSON is YAML
    with pytest.raises(ConfigError, match="'os.makedirs' is not one of"):
        prepare(["--config-path", str(replay), "--config-name", "config"])
    assert not (tmp_path / "made").exists()


def _plain(cfg):
    from runner.config.load import to_container

    return json.loads(json.dumps(to_container(cfg), default=lambda o: getattr(o, "value", str(o))))


def test_model_package_must_be_a_presets_or_allowed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "antigravity", raising=False)
    with pytest.raises(ConfigError, match="model.package='antigravity' is not a package the model presets name"):
        prepare(["hardware=cpu", "model.package=antigravity", "model.weights=pretrained"])
    assert "antigravity" not in sys.modules  # refused before any import
    monkeypatch.setenv("RUNNER_ALLOWED_PACKAGES", "antigravity")
    from runner.checks.model import package_is_allowed
    from runner.config.load import to_run_config

    package_is_allowed(to_run_config(compose_config(["hardware=cpu", "model=minilm"])))  # a preset's: allowed
    cfg = to_run_config(compose_config(["hardware=cpu"]))
    cfg.model.package = "antigravity"
    package_is_allowed(cfg)  # allowed by the environment


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["hardware.threads=0"], "hardware.threads=0 must be at least 1"),
        (["hardware.threads=-2"], "hardware.threads=-2 must be at least 1"),
        (["hardware=tp", "hardware.num_gpus=0"], "hardware.num_gpus=0 must be at least 1"),
        (["roofline.peak_tflops=-1"], "roofline.peak_tflops=-1.0 must be positive"),
        (["roofline.bandwidth_gbs=0"], "roofline.bandwidth_gbs=0.0 must be positive"),
        (["pipeline.stages=[]"], "pipeline.stages is empty"),
        (["pipeline.stages=[infer]"], "infer need(s) the model, which the 'load' stage makes"),
        (["+model.architecture.hiden_size=96"], "Did you mean model.architecture.hidden_size?"),
        (["model.architecture.hidden_size=-64"], "model.architecture.hidden_size=-64 must be at least 1"),
        (["model=tiny-bert", "scenario.sequence_length=1024"], "is more than model=tiny-bert's 512 positions"),
        (["+model.dtyp=bf16"], "Did you mean 'model.dtype'?"),
        (
            ["quant=4bitt"],
            "Could not find 'quant/4bitt'; valid options: 4bit, 8bit, fp8dq, fp8wo, int4wo, int4wo_gemlite, "
            "int4wo_triton, int8wo, int8wo_gemlite, int8wo_triton, nf4, none",
        ),
        (["scenario.batch_size=abc"], "could not be converted to Integer"),
        (["timeout_s=5", "isolate=false"], "drop isolate=false, or add timeout_s=null"),
    ],
)
def test_bad_values_fail_before_anything_loads(overrides, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kind = [] if any(o.startswith("hardware=") for o in overrides) else ["hardware=cpu"]
    with pytest.raises(ConfigError) as error:
        prepare([*kind, *overrides])
    assert message in str(error.value)
    assert "base_" not in str(error.value)  # the schema names are not options
    assert not list(tmp_path.iterdir())


def test_resume_reruns_a_job_whose_config_changed(tmp_path):
    config = _plain(compose_config(["hardware=cpu"]))
    write_json_atomic(tmp_path / "results.json", {"status": "ok", "config": config, "overrides": []})
    record, _ = finished_ok(tmp_path, {**config, "resume": True, "timeout_s": 60, "overwrite": True})
    assert record is not None  # run-level switches do not make it another job
    changed = json.loads(json.dumps(config))
    changed["scenario"]["batch_size"] = 2  # an experiment file edited: the same override strings
    record, why = finished_ok(tmp_path, changed)
    assert record is None and "scenario.batch_size: 1 -> 2" in why


def _cli(*args: str, cwd) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_real_command_line(tmp_path):
    """A handful of real `python -m runner` runs, started together: Hydra's own flags work, every config error
    exits 2, and an existing run folder is refused."""
    existing = tmp_path / "existing"
    (existing / ".hydra").mkdir(parents=True)
    runs = {
        "completion": _cli("-sc", "install=bash", cwd=tmp_path),
        "cfg": _cli("--cfg", "job", "hardware=cpu", cwd=tmp_path),
        "typo": _cli("quant=4bitt", cwd=tmp_path),
        "existing": _cli("hardware=cpu", f"hydra.run.dir={existing}", cwd=tmp_path),
        "callback": _cli(
            "+hydra.callbacks.x._target_=os.makedirs", f"+hydra.callbacks.x.name={tmp_path}/m", cwd=tmp_path
        ),
    }
    done = {name: (p.wait(timeout=300), *p.communicate()) for name, p in runs.items()}
    code, out, _ = done["completion"]
    assert code == 0 and "complete" in out and "COMP_LINE" in out  # Hydra's bash completion script
    code, out, _ = done["cfg"]
    assert code == 0 and "batch_size: 1" in out and "hardware:" in out
    for name in ("typo", "existing", "callback"):
        code, _, err = done[name]
        assert code == 2, (name, err)
        assert "error: " in err and "Traceback" not in err, (name, err)
    assert "base_quant" not in done["typo"][2]
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "outputs").exists()  # no run folder for a refused command line


def test_a_text_longer_than_the_sequence_is_warned_about_and_recorded(run_job):
    record = run_job(
        "model=minilm", "scenario.text=The quick brown fox jumps over the lazy dog", "scenario.sequence_length=4"
    )
    assert record["status"] == "ok", record.get("error")
    assert record["inputs"]["text_truncated"] is True and record["inputs"]["text_tokens"] > 4
    assert record["inputs"]["total_tokens"] == 4  # one row of sequence_length tokens: what was measured
    assert any("only its first 4 (scenario.sequence_length)" in w for w in record["warnings"])


def test_two_hydra_modes_at_once_are_a_config_error_not_a_traceback():
    with pytest.raises(ConfigError, match="only one of --multirun, --cfg and --info"):
        prepare(["-m", "attention=eager,sdpa", "--cfg", "job"])
