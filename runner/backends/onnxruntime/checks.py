"""Checks of backend=onnxruntime, before anything loads: ONNX Runtime is installed, this build has the
providers asked for and they suit the run's device, and the run is one the ONNX export can represent."""

from __future__ import annotations

import importlib.util

from runner.backends.onnxruntime.config import Exporter, OnnxRuntimeBackendConfig
from runner.backends.onnxruntime.providers import GPU_PROVIDERS, ORT_NAMES, available, requested, unavailable_reason
from runner.checks.base import check, raise_all
from runner.config.hardware import DeviceKind
from runner.config.model import DType
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.errors import ConfigError

EXPORTABLE_ATTENTION = ("eager", "sdpa")
ONE_DEVICE = (DeviceKind.cpu, DeviceKind.cuda, DeviceKind.auto)  # not multi_gpu, tensor parallel, ...


def _selected(cfg: RunConfig) -> bool:
    return isinstance(cfg.backend, OnnxRuntimeBackendConfig)


def _onnxruntime(cfg: RunConfig) -> bool:
    return _selected(cfg) and importlib.util.find_spec("onnxruntime") is not None


@check
def onnxruntime_installed(cfg: RunConfig) -> None:
    if not _selected(cfg):
        return
    problems = []
    if importlib.util.find_spec("onnxruntime") is None:
        problems.append(
            "backend=onnxruntime needs ONNX Runtime: pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA, "
            "TensorRT); see docs/onnxruntime.md"
        )
    if importlib.util.find_spec("onnx") is None:
        problems.append(
            "backend=onnxruntime exports the model with torch.onnx.export, which needs the onnx package: "
            "pip install onnx"
        )
    raise_all(problems)


@check
def providers_available(cfg: RunConfig) -> None:
    if not _onnxruntime(cfg) or cfg.hardware.kind not in ONE_DEVICE:
        return  # exportable() reports it
    device = device_or_none(cfg.hardware)
    if device is None:
        return  # device_exists reports it
    asked, found = requested(cfg.backend, device), available()
    missing = [p for p in asked if ORT_NAMES[p] not in found]
    if missing:
        raise ConfigError(unavailable_reason(missing, found))
    first = asked[0]
    if first in GPU_PROVIDERS and device.type != "cuda":
        raise ConfigError(
            f"backend.provider={first.value} runs on a GPU, but hardware={cfg.hardware.name} puts this run on "
            f"{device}: use hardware=cuda, or backend.provider=cpu"
        )
    if first not in GPU_PROVIDERS and device.type == "cuda":
        raise ConfigError(
            f"backend.provider={first.value} runs on the CPU, but hardware={cfg.hardware.name} puts the inputs on "
            f"{device}: add hardware=cpu, or use backend.provider=cuda"
        )


@check
def exportable(cfg: RunConfig) -> None:
    """What the exported graph cannot carry: PyTorch-only quantization, kernels and conversions."""
    if not _selected(cfg):
        return
    problems = []
    if cfg.hardware.kind not in ONE_DEVICE:
        problems.append(
            f"hardware={cfg.hardware.name} spreads a PyTorch model over several devices; backend=onnxruntime runs "
            "one session on one device: use hardware=cuda"
        )
    if cfg.quant.name != "none":  # the quantization plugins are PyTorch modules
        problems.append(
            f"quant={cfg.quant.name} quantizes PyTorch modules ({cfg.quant.method} layers), which cannot be exported "
            "to ONNX: use quant=none with backend=onnxruntime"
        )
    if cfg.attention.implementation not in EXPORTABLE_ATTENTION:
        problems.append(
            f"attention={cfg.attention.name} ({cfg.attention.implementation}) is a PyTorch kernel that cannot be "
            "exported to ONNX: use attention=eager or attention=sdpa"
        )
    elif cfg.attention.sdpa_kernels:
        problems.append(
            f"attention={cfg.attention.name} forces PyTorch SDPA kernels, which the exported graph does not contain: "
            "use attention=sdpa"
        )
    converted = cfg.convert.switched_on()
    if converted:
        problems.append(
            f"convert.{converted[0]}=true changes the PyTorch model; backend=onnxruntime exports the plain model: "
            f"drop convert.{converted[0]}"
        )
    if cfg.model.dtype == DType.bfloat16:
        problems.append(
            f"model.dtype=bfloat16 ({cfg.model.name}'s preset) does not export to ONNX with torch.onnx.export "
            "(rotary embeddings fail) and ONNX Runtime lacks bfloat16 kernels for much of a Transformer: "
            "add model.dtype=float16 (GPU) or model.dtype=float32"
        )
    problems += _exporter_problems(cfg)
    raise_all(problems)


def _exporter_problems(cfg: RunConfig) -> list[str]:
    backend = cfg.backend
    problems = []
    if backend.exporter == Exporter.dynamo:
        if importlib.util.find_spec("onnxscript") is None:
            problems.append("backend.exporter=dynamo needs onnxscript: pip install onnxscript, or exporter=torchscript")
        if backend.opset < 18:
            problems.append(f"backend.exporter=dynamo writes opset 18 or newer, not backend.opset={backend.opset}")
    elif not 9 <= backend.opset <= 20:
        problems.append(f"backend.opset={backend.opset}: the torchscript exporter writes opsets 9 to 20 (default 17)")
    unknown = [p for p in backend.provider_options if p not in {"cpu", "cuda", "tensorrt"}]
    if unknown:
        problems.append(f"backend.provider_options.{unknown[0]}: options are keyed by provider (cpu, cuda, tensorrt)")
    if backend.session_options and _onnxruntime(cfg):
        import onnxruntime

        known = {a for a in dir(onnxruntime.SessionOptions) if not a.startswith("_")}
        bad = [k for k in backend.session_options if k not in known]
        if bad:
            problems.append(
                f"backend.session_options.{bad[0]} is not an onnxruntime.SessionOptions attribute "
                "(intra_op_num_threads, inter_op_num_threads, enable_mem_pattern, enable_cpu_mem_arena, ...)"
            )
    return problems
