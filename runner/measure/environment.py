"""The software and hardware a run used, for its record."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

import torch

PACKAGES = [
    "torch",
    "transformers",
    "accelerate",
    "hydra-core",
    "bitsandbytes",
    "onnxruntime",
    "onnxruntime-gpu",
    "flash-attn",
    "flash-attn-4",
    "numpy",
]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[dict]:
    if not torch.cuda.is_available():
        return []
    driver = None
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # NVML is optional: the record says driver None
        pass
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append(
            {
                "index": i,
                "name": p.name,
                "memory_bytes": p.total_memory,
                "compute_capability": f"{p.major}.{p.minor}",
                "multiprocessors": p.multi_processor_count,
                "driver": driver,
            }
        )
    return gpus


def environment() -> dict:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "gpus": _gpus(),
        "packages": {name: v for name in PACKAGES if (v := _version(name))},
    }
