"""The quantization-method interface: one plugin per method, registered once by name in QUANT_METHODS.

A method answers for itself (vLLM's QuantizationConfig pattern): what transformers loads it with, where it runs
and why not elsewhere, whether the decode step can be compiled, and how to prove on the loaded model that it
happened. Nothing outside a plugin tests `quant.method == "..."`. Adding a method: `conf/quant/<name>.yaml` with
`method: <name>`, and one module in runner/quant/methods/ that registers a QuantMethod subclass
(docs/quantization.md). The module imports configs and this interface only (the checks read it before anything
loads), or the module of a method it extends (gemlite and triton extend torchao); its library is imported inside the
methods that quantize or measure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from runner.config.model import DType
from runner.config.quant import QuantConfig
from runner.config.run import RunConfig
from runner.registry import Registry

if TYPE_CHECKING:  # the interface is read by the checks, which import no model code
    import torch
    from transformers import PreTrainedModel


class QuantMethod:
    name: ClassVar[str]
    package: ClassVar[str | None] = None  # import name the method needs, None: nothing
    extra: ClassVar[str | None] = None  # `pip install 'runner[<extra>]'` installs it
    # it replaces PyTorch layers, so it runs on a backend that declares `runs_torch_modules`
    needs_torch_modules: ClassVar[bool] = True
    # its quantized weights concatenate by output rows (torch.cat, slicing), so convert.fuse_projections can join
    # q/k/v and gate/up into one quantized matrix each
    weights_join_rows: ClassVar[bool] = False
    # its kernels read one fused matrix faster than the parts, so convert.fuse_projections=null (automatic) fuses
    prefers_fused_projections: ClassVar[bool] = False
    # convert.fused_decode's kernels read its weights (runner/fused_decode/kernels.py prepares them)
    fused_decode_reads: ClassVar[bool] = False

    def quantizes(self, quant: QuantConfig) -> bool:
        return True

    def quantization_config(self, quant: QuantConfig, model_dtype: DType) -> Any:
        """The transformers `quantization_config` object that `from_pretrained` loads with."""
        raise NotImplementedError

    def compilable(self, quant: QuantConfig) -> str | None:
        """None when the decode step can be compiled with this scheme, else the reason why not."""
        return None

    def problems(self, cfg: RunConfig) -> list[str]:
        """The method's own checks before anything loads (devices, dtypes, options), each naming the fix."""
        return []

    def skipped_modules(self, quant: QuantConfig) -> list[str] | None:
        """Module-name patterns the method leaves unquantized; None: transformers' default (the output embeddings)."""
        return None

    def layer_scheme(self, module: torch.nn.Module) -> str | None:
        """The scheme of one quantized layer ('int8', 'nf4', 'int4wo', ...), None for a layer left as it was."""
        raise NotImplementedError

    def weight_bytes(self, module: torch.nn.Module) -> int:
        """Bytes the quantized weight of `module` really takes in memory."""
        return module.weight.nelement() * module.weight.element_size()

    def state_bytes(self, model: PreTrainedModel) -> int:
        """Bytes of quantization state that is neither a parameter nor a buffer (bitsandbytes' absmax, scales)."""
        return 0

    def footprint(self, model: PreTrainedModel) -> int:
        """Bytes the loaded model holds: parameters, buffers and the quantization state."""
        return model.get_memory_footprint() + self.state_bytes(model)

    def options_record(self, quant: QuantConfig) -> dict:
        """The method's own options for the record's `model.quantization` section."""
        return {}

    def before_compile(self, model: PreTrainedModel) -> CompileReady | None:
        """What makes the quantized model cheap to call once compiled (`convert.compile=true`), done to `model`;
        None: nothing to do. The convert stage records it and undoes it before `save`."""
        return None

    nothing_quantized_hint: ClassVar[str] = ""  # what to check when the census finds no quantized layer

    def weight_storage(self, quant: QuantConfig) -> Any:
        """Storage dtype of a quantized weight (torch dtype or accelerate CustomDtype), for size estimates."""
        raise NotImplementedError

    def describe(self, quant: QuantConfig) -> str:
        return f"{self.name} {quant.bits}-bit"


class CompileReady:
    """A reversible change that a method makes to its model before the decode step is compiled."""

    record: dict[str, Any]

    def reverse(self, model: PreTrainedModel) -> dict[str, Any]:
        raise NotImplementedError


QUANT_METHODS: Registry[QuantMethod] = Registry("quantization method")


def quant_method(name: str):
    """Class decorator: register one instance of the method under `name`."""

    def add(cls: type[QuantMethod]) -> type[QuantMethod]:
        cls.name = name
        QUANT_METHODS.register(name)(cls())
        return cls

    return add


def method_of(quant: QuantConfig) -> QuantMethod:
    return QUANT_METHODS.get(quant.method)


def is_quantized(quant: QuantConfig) -> bool:
    """The one way to ask: does this config quantize anything?"""
    return quant.method in QUANT_METHODS and method_of(quant).quantizes(quant)
