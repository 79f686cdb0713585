"""The command line, checked before Hydra runs anything. Hydra's own argument parser and override grammar read it;
the config is composed the way Hydra will compose it; the Hydra plugins it names, the typed run config and a run
folder of its own are settled here. Every problem is a ConfigError (exit status 2), before a folder is written or a
model loads. Help, `--hydra-help` and shell completion (`-sc`) go to Hydra untouched."""

from __future__ import annotations

import argparse
import functools
import re
from pathlib import Path

from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_automatic_config_search_path, get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from runner.checks.hydra_node import check_hydra_node
from runner.config import SCHEMAS
from runner.errors import ConfigError
from runner.overrides import check_override_keys, parse_overrides
from runner.run_dirs import claim

MAIN_FILE = str(Path(__file__).with_name("__main__.py"))
CONFIG_PATH, CONFIG_NAME = "../conf", "config"  # @hydra.main's, relative to runner/__main__.py
SCHEMA_NAMES = {name for schemas in SCHEMAS.values() for name in schemas}  # base_quant, ...: not user options


def _hydra(args: argparse.Namespace) -> Hydra:
    return _hydra_for(args.config_path or CONFIG_PATH, args.config_dir)


@functools.cache
def _hydra_for(config_path: str, config_dir: str | None) -> Hydra:
    """Hydra's composer for this search path; kept, with the config files it read, for the process's next command
    line (one in the CLI; many in the tests, which check hundreds of command lines in-process)."""
    search_path = create_automatic_config_search_path(MAIN_FILE, None, config_path)
    if config_dir is not None:
        folder = Path(config_dir).absolute()
        if not folder.is_dir():
            raise ConfigError(f"--config-dir {folder}: no such folder")
        search_path.prepend("command-line", f"file://{folder}")
    GlobalHydra.instance().clear()
    try:
        return Hydra.create_main_hydra2(task_name="runner", config_search_path=search_path)
    finally:
        GlobalHydra.instance().clear()


def missing_option_message(error: MissingConfigException) -> str:
    """Hydra's "could not find" message, with the schema names (base_quant, ...) left out of the options."""
    head = str(error).splitlines()[0]
    options = [o for o in error.options or [] if o not in SCHEMA_NAMES]
    return head + (f"; valid options: {', '.join(options)}" if options else "")


# OmegaConf's own lines under its message (the key again, and the schema's class names)
_OMEGACONF_DETAIL = re.compile(r"^\s*(full_key:|reference_type=|object_type=)")


def _text(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return "\n".join(line for line in lines if not _OMEGACONF_DETAIL.match(line)).strip()


def _message(error: BaseException) -> str:
    """Hydra's message and its cause's ("Error merging override x=abc" alone does not say what is wrong)."""
    parts = [_text(error)]
    if error.__cause__ is not None and _text(error.__cause__) not in parts[0]:
        parts.append(_text(error.__cause__))
    return ": ".join(p for p in parts if p)


def compose(args: argparse.Namespace, overrides: list[str], mode: RunMode) -> DictConfig:
    """The config Hydra will compose (with its `hydra` node); Hydra's own errors as ConfigErrors."""
    try:
        hydra = _hydra(args)
        return hydra.compose_config(
            args.config_name or CONFIG_NAME, overrides, run_mode=mode, validate_sweep_overrides=mode == RunMode.RUN
        )
    except MissingConfigException as e:
        raise ConfigError(missing_option_message(e)) from e
    except (HydraException, OmegaConfBaseException, ValueError, OSError) as e:
        raise ConfigError(_message(e)) from e


def _mode(args: argparse.Namespace, cfg: DictConfig) -> RunMode:
    return RunMode.MULTIRUN if args.multirun or cfg.hydra.mode == RunMode.MULTIRUN else RunMode.RUN


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "\\'") + "'"


def _folder(cfg: DictConfig, key: str) -> Path:
    try:
        return Path(str(OmegaConf.select(cfg, key, throw_on_resolution_failure=True)))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{key}: {e}") from e


def claim_folder(argv: list[str], parsed: list[Override], cfg: DictConfig, mode: RunMode) -> list[str]:
    """`argv` with the run's (or sweep's) own folder claimed and named as `hydra.run.dir` (`hydra.sweep.dir`)."""
    key = "hydra.sweep.dir" if mode == RunMode.MULTIRUN else "hydra.run.dir"
    given = [o.input_line for o in parsed if o.key_or_group == key]
    reuse = bool(cfg.get("overwrite")) or (mode == RunMode.MULTIRUN and bool(cfg.get("resume")))
    folder = claim(_folder(cfg, key), sweep=mode == RunMode.MULTIRUN, given=bool(given), reuse=reuse)
    return [a for a in argv if a not in given] + [f"{key}={_quoted(folder)}"]


def prepare(argv: list[str]) -> list[str]:
    """Check the command line; return it as Hydra should run it (with the run's own folder). Raises ConfigError."""
    parser = get_args_parser()
    args = parser.parse_args(argv)  # a bad flag: argparse prints the usage and exits 2
    if args.help or args.hydra_help or args.shell_completion:
        return argv
    modes = [args.multirun, args.cfg is not None, args.info is not None]
    if sum(bool(m) for m in modes) > 1:  # Hydra says the same, but as a ValueError traceback
        raise ConfigError("only one of --multirun, --cfg and --info can be given (Hydra runs one mode at a time)")
    if args.experimental_rerun is not None:
        raise ConfigError(
            "--experimental-rerun loads a pickled config, which can run any code: replay a run from its record's "
            "`replay` command (--config-path <run>/.hydra --config-name config)"
        )
    parsed = parse_overrides(args.overrides)
    check_override_keys(parsed)
    inspecting = args.cfg is not None or args.info is not None
    # sweeps and inspection: Hydra's multirun composition, which keeps sweep overrides for the sweeper
    swept = args.multirun or inspecting or any(o.is_sweep_override() for o in parsed)
    cfg = compose(args, args.overrides, RunMode.MULTIRUN if swept else RunMode.RUN)
    check_hydra_node(cfg.hydra)
    if inspecting:
        return argv
    mode = _mode(args, cfg)
    if mode == RunMode.RUN:
        if swept:  # Hydra's own "ambiguous value ... add --multirun" message, exit 2
            compose(args, args.overrides, RunMode.RUN)
        from runner.config.load import check_for_the_job

        job = cfg.copy()
        with open_dict(job):
            del job["hydra"]  # its sweep-only fields cannot resolve in a single run
        try:
            # every check, before anything loads, once: the job takes this typed config (Job.at_the_door); a
            # sweep's jobs are checked one by one as they run
            check_for_the_job(job)
        except OmegaConfBaseException as e:  # a value that does not resolve (a missing one, a bad interpolation)
            raise ConfigError(_message(e)) from e
    return claim_folder(argv, parsed, cfg, mode)
