"""Execution providers: which ones a run asks for, whether this ONNX Runtime build has them, and why one
that is listed did not come up. ONNX Runtime itself only logs a provider that fails to load and carries on
with the CPU; these functions turn that into an error that names the cause."""

from __future__ import annotations

import ctypes
import importlib.metadata
from pathlib import Path

import torch

from runner.backends.onnxruntime.config import OnnxRuntimeBackendConfig, Provider

ORT_NAMES = {
    Provider.cpu: "CPUExecutionProvider",
    Provider.cuda: "CUDAExecutionProvider",
    Provider.tensorrt: "TensorrtExecutionProvider",
}
GPU_PROVIDERS = {Provider.cuda, Provider.tensorrt}
# the shared library ONNX Runtime loads for a provider; loading it ourselves reveals the missing dependency
PROVIDER_LIBRARIES = {
    Provider.cuda: "libonnxruntime_providers_cuda.so",
    Provider.tensorrt: "libonnxruntime_providers_tensorrt.so",
}
INSTALL_GPU = "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
INSTALL_TENSORRT = (
    "install TensorRT 10 for your CUDA (pip install tensorrt-cu12 / tensorrt-cu13, or NVIDIA's tar/deb packages) "
    "so that libnvinfer.so.10 is on LD_LIBRARY_PATH; see docs/onnxruntime.md"
)


def requested(backend: OnnxRuntimeBackendConfig, device: torch.device) -> list[Provider]:
    """The providers a run asks for, in priority order, with `auto` resolved from the run's device."""
    first = backend.provider
    if first == Provider.auto:
        first = Provider.cuda if device.type == "cuda" else Provider.cpu
    extra = [Provider.cuda if p == Provider.auto else p for p in backend.extra_providers]
    return list(dict.fromkeys([first, *extra]))


def available() -> list[str]:
    """Providers this ONNX Runtime can create: those built in, and plugin providers registered with a device
    (newer GPU wheels register CUDA as a plugin, which `get_available_providers()` does not list)."""
    import onnxruntime

    names = list(onnxruntime.get_available_providers())
    devices = onnxruntime.get_ep_devices() if hasattr(onnxruntime, "get_ep_devices") else []
    return list(dict.fromkeys([*names, *(d.ep_name for d in devices)]))


def installed_packages() -> dict[str, str]:
    """The ONNX Runtime distributions installed (two of them share the `onnxruntime` folder and clash)."""
    found = {}
    for dist in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def unavailable_reason(missing: list[Provider], available: list[str]) -> str:
    """Why the `missing` providers are not among `onnxruntime.get_available_providers()`, and the fix."""
    packages = ", ".join(f"{k} {v}" for k, v in installed_packages().items()) or "no ONNX Runtime package"
    listed = ", ".join(available)
    names = "+".join(p.value for p in missing)
    if set(missing) <= GPU_PROVIDERS and "onnxruntime-gpu" not in installed_packages():
        return (
            f"backend.provider={names} needs the GPU build of ONNX Runtime, but {packages} is installed "
            f"(a CPU-only build; available providers: {listed}). Fix: {INSTALL_GPU}, or backend.provider=cpu"
        )
    reasons = "; ".join(load_failure(p) for p in missing)
    return (
        f"backend.provider={names}: {', '.join(ORT_NAMES[p] for p in missing)} cannot be created by this ONNX "
        f"Runtime ({packages}; available providers: {listed}): {reasons}"
    )


def load_failure(provider: Provider) -> str:
    """Why ONNX Runtime could not start a provider that its build has: load the provider's library the way
    ONNX Runtime does and report the loader's error (it names the missing CUDA, cuDNN or TensorRT library)."""
    import onnxruntime

    library = PROVIDER_LIBRARIES.get(provider)
    if library is None:
        return "ONNX Runtime did not say why (see its log above)"
    path = Path(onnxruntime.__file__).parent / "capi" / library
    if not path.exists():
        return f"{library} is not part of the installed ONNX Runtime ({path.parent}); {INSTALL_GPU}"
    try:
        ctypes.CDLL(str(path))
    except OSError as error:
        fix = INSTALL_TENSORRT if provider == Provider.tensorrt else f"install the CUDA and cuDNN it needs{built_for()}"
        return f"loading {library} failed: {error}. Fix: {fix} (docs/onnxruntime.md)"
    return f"{library} loads, so ONNX Runtime refused the provider for another reason: see its log above"


def built_for() -> str:
    """The CUDA version the installed ONNX Runtime was built for, beside torch's, when both are known."""
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        return ""
    cuda = getattr(info, "cuda_version", None)
    return f" (this ONNX Runtime was built for CUDA {cuda}; torch uses CUDA {torch.version.cuda})" if cuda else ""
