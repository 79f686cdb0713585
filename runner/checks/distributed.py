"""Checks of hardware=tp before anything starts: GPUs for every rank, a model transformers can split evenly over
them, and options that tensor parallelism does not combine with. Also `hardware.num_gpus` where it means nothing."""

from __future__ import annotations

from transformers import CONFIG_MAPPING

from runner.checks.base import check
from runner.config.backend import torch_module_backends
from runner.config.hardware import DeviceKind
from runner.config.run import RunConfig
from runner.devices import none_seen, visible_gpus
from runner.distributed import tp
from runner.distributed.tp import tp_size
from runner.errors import ConfigError
from runner.quant import is_quantized

# the sizes a tensor-parallel plan splits over the ranks (attention heads, MLP width, vocabulary for the lm_head)
SPLIT_SIZES = ("num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size")


@check
def num_gpus_where_it_counts(cfg: RunConfig) -> None:
    """GPU options on a kind that would silently ignore them. hardware=cpu takes them quietly, so that one sweep
    can compare `hardware=cpu,tp hardware.num_gpus=4`."""
    hardware = cfg.hardware
    if hardware.tp_on_cpu and hardware.kind in (DeviceKind.cuda, DeviceKind.multi_gpu):
        raise ConfigError(f"hardware.tp_on_cpu=true only applies to hardware=tp; hardware={hardware.name} runs on GPUs")
    if hardware.num_gpus is not None and hardware.kind in (DeviceKind.cuda, DeviceKind.auto):
        raise ConfigError(
            f"hardware.num_gpus={hardware.num_gpus} sets the GPUs of hardware=tp (and of multi_gpu under a cluster "
            f"launcher); hardware={hardware.name} uses one GPU. Use hardware=tp hardware.num_gpus=N to split the "
            "model over N GPUs"
        )


@check
def tp_has_its_devices(cfg: RunConfig) -> None:
    if not tp.enabled(cfg.hardware):
        return
    size = tp_size(cfg.hardware)
    if size < 2:
        raise ConfigError(
            f"hardware.num_gpus={size}: tensor parallelism splits each layer over 2 or more GPUs; "
            "for one GPU use hardware=cuda"
        )
    if cfg.hardware.tp_on_cpu:
        return
    available = visible_gpus()
    if not available:
        raise ConfigError(
            f"hardware=tp needs {size} GPUs (one process each), but {none_seen()}. Run it on a GPU host, or "
            "try the tensor-parallel path with CPU processes: hardware.tp_on_cpu=true (slow; not a benchmark)"
        )
    if size > available:
        raise ConfigError(
            f"hardware.num_gpus={size} but this host has {available} GPU(s): lower hardware.num_gpus to {available} "
            "or fewer"
        )


@check
def tp_model_splits_evenly(cfg: RunConfig) -> None:
    if not tp.enabled(cfg.hardware):
        return
    model = cfg.model
    config_class = CONFIG_MAPPING[model.model_type] if model.model_type in CONFIG_MAPPING else None
    if config_class is None or not getattr(config_class, "base_model_tp_plan", None):
        raise ConfigError(
            f"model={model.name} ({model.model_type}) has no tensor-parallel plan in transformers, so hardware=tp "
            "cannot split it: use hardware=multi_gpu (layers placed whole on each GPU)"
        )
    size = tp_size(cfg.hardware)
    config = config_class(**model.architecture)
    uneven = {
        name: value for name in SPLIT_SIZES if isinstance(value := getattr(config, name, None), int) and value % size
    }
    if uneven:
        sizes = ", ".join(f"{name}={value}" for name, value in uneven.items())
        raise ConfigError(
            f"hardware.num_gpus={size} does not divide model={model.name}'s {sizes}: each GPU must get an equal "
            "share of every split layer. Pick a hardware.num_gpus that divides them"
        )


@check
def tp_combinations(cfg: RunConfig) -> None:
    if not tp.enabled(cfg.hardware):
        return
    if not cfg.backend.runs_torch_modules:
        fix = " or ".join(torch_module_backends())
        raise ConfigError(f"hardware=tp shards a PyTorch model; backend={cfg.backend.name} cannot: use backend={fix}")
    if is_quantized(cfg.quant):
        raise ConfigError(
            f"quant={cfg.quant.name} with hardware=tp: transformers' tensor-parallel plan shards plain weights, not "
            f"{cfg.quant.method} ones. Use quant=none, or hardware=multi_gpu to spread a quantized model over GPUs"
        )
    if cfg.save.model:
        raise ConfigError(
            "save.model=true with hardware=tp: every rank holds only a shard. Save the model from a one-device run "
            "(hardware=cuda or hardware=cpu)"
        )
