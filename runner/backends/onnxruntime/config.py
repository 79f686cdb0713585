"""Schema of `backend=onnxruntime`: which execution providers run the exported model, how the session is set
up, and how the model is exported."""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from runner.config.backend import BackendConfig, backend_config


class Provider(str, Enum):
    auto = "auto"  # the run's device: cuda on a GPU, cpu on the CPU
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


class GraphOptimization(str, Enum):
    disable = "disable"
    basic = "basic"  # constant folding, redundant node removal
    extended = "extended"  # + fusions (GELU, LayerNorm, attention where the pattern is known)
    all = "all"  # + layout optimizations


class Exporter(str, Enum):
    torchscript = "torchscript"  # torch.onnx.export(dynamo=False): traces in seconds, needs only torch
    dynamo = "dynamo"  # torch.export based: needs onnxscript and opset >= 18, slower to export


@backend_config("onnxruntime")
@dataclass
class OnnxRuntimeBackendConfig(BackendConfig):
    name: str = "onnxruntime"
    provider: Provider = Provider.auto  # the provider that must run the model
    # more providers after `provider`, in priority order, for the nodes it cannot take (tensorrt -> [cuda]);
    # ORT always keeps the CPU provider last for shape computations
    extra_providers: list[Provider] = field(default_factory=list)
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # by provider: {cuda: {...}}
    graph_optimization: GraphOptimization = GraphOptimization.all
    # attributes of onnxruntime.SessionOptions (intra_op_num_threads, enable_mem_pattern, ...);
    # intra_op_num_threads defaults to hardware.threads when that is set
    session_options: dict[str, Any] = field(default_factory=dict)
    session_config: dict[str, str] = field(default_factory=dict)  # SessionOptions.add_session_config_entry
    exporter: Exporter = Exporter.torchscript
    opset: int = 17
