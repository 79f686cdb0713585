"""torchao (quant=int8wo, int4wo, fp8wo, fp8dq): a torchao config inside transformers' TorchAoConfig.

torchao replaces each Linear weight with a tensor subclass (Int4TilePackedTo4dTensor, Float8Tensor, ...); the
module stays an nn.Linear. The census counts layers by that subclass, and the bytes are those of the packed data,
scales and zero points inside it (the subclass itself reports its logical bfloat16 size). torchao 0.18 kernels:
- int8wo: any device (plain int8 weights and a scale per channel);
- int4wo: CUDA only: tile_packed_to_4d (tinygemm, in PyTorch, bfloat16), plain/preshuffled (the `mslk` package);
  gemlite's Triton kernels, CUDA only too, are the gemlite method (quant=int4wo_gemlite: runner/quant/methods/
  gemlite.py); torchao 0.18 has no CPU layout for int4; `int4_packing_format=inductor` is the runner's own
  layout in plain PyTorch ops (runner/quant/packed_int4.py): any device and float dtype, fused by inductor when
  the decode step is compiled;
- fp8wo: compute capability 8.9+ (Ada, Hopper) on CUDA, or the CPU (dequantizing fallback);
- fp8dq: float8 matmuls (torch._scaled_mm, per-row scales): Hopper (9.0) and newer only.
"""

from __future__ import annotations

import importlib.util
import re
from typing import TYPE_CHECKING

import torch

from runner.config.model import DType
from runner.config.quant import Int4Packing, Int4QParams, QuantConfig, TorchAoScheme
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.quant.base import CompileReady, QuantMethod, quant_method

if TYPE_CHECKING:
    from transformers import PreTrainedModel

GROUP_SIZES = (32, 64, 128, 256)
# scheme -> (least CUDA compute capability, what needs it), or absent: any CUDA GPU
MIN_CAPABILITY = {
    TorchAoScheme.fp8wo: ((8, 9), "float8 weights need an Ada or Hopper GPU (compute capability 8.9+)"),
    TorchAoScheme.fp8dq: ((9, 0), "float8 matmuls (torch._scaled_mm with per-row scales) need Hopper (sm90+)"),
}
CPU_REFUSALS = {
    TorchAoScheme.int4wo: "torchao 0.18 has no CPU layout for Int4WeightOnlyConfig (tile_packed_to_4d, plain and "
    "preshuffled are CUDA kernels); use quant.int4_packing_format=inductor (the runner's own layout) or quant=int8wo "
    "on the CPU, or hardware=cuda",
    TorchAoScheme.fp8dq: "float8 dynamic-activation matmuls run on Hopper GPUs only; use quant=fp8wo or int8wo "
    "on the CPU, or hardware=cuda on an H100/H200",
}
MSLK_PACKINGS = (Int4Packing.plain, Int4Packing.preshuffled)  # kernels of the separate `mslk` package


def int_weight_problems(quant: QuantConfig, kernels: str) -> list[str]:
    """The checks of a method with int4 and int8 weight-only kernels (gemlite, triton): `bits` 4 or 8, and for 4 a
    group size of GROUP_SIZES; `kernels` names them in the message."""
    problems = []
    if quant.bits not in (4, 8):
        problems.append(f"quant.bits={quant.bits}: {kernels} take 4 or 8")
    if quant.bits == 4 and quant.group_size not in GROUP_SIZES:
        sizes = ", ".join(map(str, GROUP_SIZES))
        problems.append(f"quant.group_size={quant.group_size}: quant={quant.name} takes {sizes}")
    return problems


def int_weight_storage(quant: QuantConfig):
    """Storage dtype of an int4 or int8 weight, for size estimates."""
    from accelerate.utils import CustomDtype

    return CustomDtype.INT4 if quant.bits == 4 else torch.int8


def ao_config(quant: QuantConfig):
    """The torchao AOBaseConfig of the scheme, options field for field."""
    import torchao.quantization as q
    from torchao.quantization.quantize_.workflows import Int4ChooseQParamsAlgorithm, Int4PackingFormat

    scheme = TorchAoScheme(quant.scheme)
    if scheme is TorchAoScheme.int8wo:
        return q.Int8WeightOnlyConfig()
    if scheme is TorchAoScheme.int4wo and quant.int4_packing_format == Int4Packing.inductor:
        from runner.quant.packed_int4 import PackedInt4Config

        return PackedInt4Config(group_size=quant.group_size)
    if scheme is TorchAoScheme.int4wo:
        return q.Int4WeightOnlyConfig(
            group_size=quant.group_size,
            int4_packing_format=Int4PackingFormat(Int4Packing(quant.int4_packing_format).value),
            int4_choose_qparams_algorithm=Int4ChooseQParamsAlgorithm(quant.int4_choose_qparams_algorithm.value),
        )
    if scheme is TorchAoScheme.fp8wo:
        return q.Float8WeightOnlyConfig()
    return q.Float8DynamicActivationFloat8WeightConfig(granularity=q.PerRow())


def _runs_anywhere(quant: QuantConfig) -> bool:
    """The runner's own int4 layout (plain PyTorch ops): any device, any float dtype."""
    return quant.scheme == TorchAoScheme.int4wo and quant.int4_packing_format == Int4Packing.inductor


def _is_ao_tensor(tensor) -> bool:
    from torchao.utils import TorchAOBaseTensor

    return isinstance(tensor, TorchAOBaseTensor)


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a (possibly subclassed) tensor holds: a torchao subclass is the sum of its inner tensors."""
    if not _is_ao_tensor(tensor):
        return tensor.nelement() * tensor.element_size()
    names, _ = tensor.__tensor_flatten__()
    return sum(tensor_bytes(getattr(tensor, name)) for name in names if getattr(tensor, name) is not None)


class UnwrappedWeights(CompileReady):
    """torchao's `unwrap_tensor_subclass`: each quantized Linear weight becomes a parametrization over its inner
    plain tensors (int8 data, scales, ...), and the subclass is rebuilt where the weight is read, inside the
    compiled graph. A subclass weight is a graph input that, on every call of the compiled step, AOTAutograd
    flattens and dynamo guards in Python (`__tensor_flatten__` twice and a metadata check per layer, on the host,
    while the GPU waits); plain tensors are checked in C++. Reversed by removing the parametrizations and putting
    the original Parameter objects back.

    A weight that quantizes its layer's input on every call (fp8dq: `act_quant_kwargs`) stays a subclass: dynamo
    cannot rebuild it inside the graph, as the kwargs object is no graph value ("Failed to convert args/kwargs to
    proxy ... QuantizeTensorToFloat8Kwargs", torch 2.11 on the H200 and 2.13 on the CPU, torchao 0.18), while the
    subclass itself compiles. Such a model pays the host cost above; skip_guard_eval still removes the guards."""

    KEPT_WHY = "weights that quantize their input (act_quant_kwargs) cannot be rebuilt inside a compiled graph"

    def __init__(self, model: PreTrainedModel) -> None:
        from torch.nn.utils import parametrize
        from torchao.utils import UnwrapTensorSubclass

        weights = {m: m.weight for m in model.modules() if isinstance(m, torch.nn.Linear) and _is_ao_tensor(m.weight)}
        kept = [m for m, w in weights.items() if getattr(w, "act_quant_kwargs", None) is not None]
        for module in [m for m in weights if m not in kept]:  # torchao's unwrap_tensor_subclass, less the kept ones
            if not parametrize.is_parametrized(module):
                parametrize.register_parametrization(module, "weight", UnwrapTensorSubclass())
        self.weights = {m: w for m, w in weights.items() if _unwrapped(m)}  # the Parameter objects, to put back
        # nothing unwrapped (fp8dq): the record says so under a kind of its own, not as a conversion that ran
        kind = "unwrap_tensor_subclass" if self.weights or not kept else "tensor_subclasses_kept"
        self.record = {"kind": kind, "layers": len(self.weights)}
        if kept:
            self.record |= {"kept_as_subclass": len(kept), "why_kept": self.KEPT_WHY}

    def reverse(self, model: PreTrainedModel) -> dict:
        from torch.nn.utils import parametrize

        for module, weight in self.weights.items():
            # removing the parametrization leaves the rebuilt weight as a buffer: the original Parameter goes back
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            module._buffers.pop("weight", None)
            module._parameters.pop("weight", None)
            module.register_parameter("weight", weight)
        self.weights = {}
        return {**self.record, "reversed": True}


def _unwrapped(module: torch.nn.Module) -> bool:
    from torch.nn.utils import parametrize
    from torchao.utils import UnwrapTensorSubclass

    return parametrize.is_parametrized(module, "weight") and any(
        isinstance(p, UnwrapTensorSubclass) for p in module.parametrizations["weight"]
    )


@quant_method("torchao")
class TorchAo(QuantMethod):
    package = "torchao"
    extra = "torchao"
    nothing_quantized_hint = (
        "Check quant.modules_to_not_convert, and (4-bit schemes) that Linear input sizes are multiples of "
        "quant.group_size"
    )

    def quantization_config(self, quant: QuantConfig, model_dtype: DType):
        from transformers import TorchAoConfig

        return TorchAoConfig(quant_type=ao_config(quant), modules_to_not_convert=self._skip_patterns(quant))

    def _skip_patterns(self, quant: QuantConfig) -> list[str] | None:
        """Module names as transformers' torchao quantizer matches them. It tests the parameter's name
        ("...mlp.down_proj.weight"), where a bare "down_proj" matches neither as a prefix nor as a suffix: each name
        becomes a regex for that module anywhere in the tree, as bitsandbytes' llm_int8_skip_modules behave."""
        if not quant.modules_to_not_convert:
            return None
        return [rf"(?:.*\.)?{re.escape(name)}" for name in quant.modules_to_not_convert]

    def skipped_modules(self, quant: QuantConfig) -> list[str] | None:
        return list(quant.modules_to_not_convert) if quant.modules_to_not_convert else None

    def layer_scheme(self, module: torch.nn.Module) -> str | None:
        weight = getattr(module, "weight", None)
        if isinstance(module, torch.nn.Linear) and _is_ao_tensor(weight):
            return type(weight).__name__
        return None

    def weight_bytes(self, module: torch.nn.Module) -> int:
        return tensor_bytes(module.weight)

    def footprint(self, model: PreTrainedModel) -> int:
        return sum(tensor_bytes(t) for t in [*model.parameters(), *model.buffers()])

    def weight_storage(self, quant: QuantConfig):
        from accelerate.utils import CustomDtype

        if quant.scheme == TorchAoScheme.int4wo:
            return CustomDtype.INT4
        return torch.int8 if quant.scheme == TorchAoScheme.int8wo else torch.float8_e4m3fn

    def before_compile(self, model: PreTrainedModel) -> CompileReady | None:
        return UnwrappedWeights(model)

    def describe(self, quant: QuantConfig) -> str:
        return f"torchao {quant.scheme.value if quant.scheme else None}"

    def options_record(self, quant: QuantConfig) -> dict:
        record = {"scheme": quant.scheme.value}
        if quant.scheme == TorchAoScheme.int4wo:
            record |= {
                "group_size": quant.group_size,
                "int4_packing_format": quant.int4_packing_format.value,
                "int4_choose_qparams_algorithm": quant.int4_choose_qparams_algorithm.value,
            }
        return record

    def problems(self, cfg: RunConfig) -> list[str]:
        quant = cfg.quant
        if quant.scheme is None:
            return [f"quant.method=torchao needs quant.scheme: one of {', '.join(s.value for s in TorchAoScheme)}"]
        problems = self._int4_options(cfg) if quant.scheme == TorchAoScheme.int4wo else []
        device = device_or_none(cfg.hardware)
        if device is None:
            return problems  # device_exists reports it
        if device.type == "cpu" and quant.scheme in CPU_REFUSALS and not _runs_anywhere(quant):
            why = CPU_REFUSALS[quant.scheme]
            problems.append(f"quant={quant.name} needs a CUDA GPU, and this run is on the CPU: {why}")
        if device.type == "cuda" and quant.scheme in MIN_CAPABILITY:
            least, why = MIN_CAPABILITY[quant.scheme]
            have = torch.cuda.get_device_capability(device)
            if have < least:
                problems.append(
                    f"quant={quant.name} on {torch.cuda.get_device_name(device)} (compute capability "
                    f"{have[0]}.{have[1]}): {why}; use quant=int8wo or int4wo here"
                )
        return problems

    def _int4_options(self, cfg: RunConfig) -> list[str]:
        quant, problems = cfg.quant, []
        if quant.group_size not in GROUP_SIZES:
            problems.append(f"quant.group_size={quant.group_size}: int4wo takes {', '.join(map(str, GROUP_SIZES))}")
        if cfg.model.dtype != DType.bfloat16 and not _runs_anywhere(quant):
            problems.append(
                f"quant={quant.name} with model.dtype={cfg.model.dtype.value}: torchao's int4 kernels take "
                "bfloat16 activations; set model.dtype=bfloat16"
            )
        packing = quant.int4_packing_format
        if quant.int4_choose_qparams_algorithm == Int4QParams.hqq and packing != Int4Packing.tile_packed_to_4d:
            problems.append(
                f"quant.int4_choose_qparams_algorithm=hqq with quant.int4_packing_format={packing.value}: torchao "
                "0.18 finds HQQ scales for tile_packed_to_4d only; set quant.int4_packing_format=tile_packed_to_4d"
            )
        if packing in MSLK_PACKINGS and importlib.util.find_spec("mslk") is None:
            problems.append(
                f"quant.int4_packing_format={packing.value} runs the kernels of the `mslk` package, which is not "
                "installed; use quant.int4_packing_format=tile_packed_to_4d (PyTorch's own tinygemm kernel)"
            )
        return problems
