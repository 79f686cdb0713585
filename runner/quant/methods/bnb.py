"""bitsandbytes (quant=8bit, 4bit, nf4): the `quant` group -> transformers' BitsAndBytesConfig, field for field."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from runner.config.model import DType
from runner.config.quant import QuantConfig
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.quant.base import QuantMethod, is_quantized, quant_method

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig

CPU_4BIT_BLOCK = 64


class _Once(logging.Filter):
    """LLM.int8 casts float32 activations to float16 and says so for every layer on every call; once is enough."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        first = message not in self.seen
        self.seen.add(message)
        return first


_ONCE = _Once()


def compute_dtype(quant: QuantConfig, model_dtype: DType) -> str:
    """4-bit matmuls run in this dtype; by default the model's own (BitsAndBytesConfig's float32 default would
    make a float16 model slower and silently change what is measured)."""
    return (quant.bnb_4bit_compute_dtype or model_dtype).value


def bnb_config(quant: QuantConfig, model_dtype: DType) -> BitsAndBytesConfig | None:
    if not is_quantized(quant):
        return None
    from transformers import BitsAndBytesConfig

    logging.getLogger("bitsandbytes.autograd._functions").addFilter(_ONCE)  # the same filter once, however often
    return BitsAndBytesConfig(
        load_in_8bit=quant.bits == 8,
        load_in_4bit=quant.bits == 4,
        llm_int8_threshold=quant.llm_int8_threshold,
        llm_int8_skip_modules=list(quant.llm_int8_skip_modules) if quant.llm_int8_skip_modules else None,
        llm_int8_enable_fp32_cpu_offload=quant.llm_int8_enable_fp32_cpu_offload,
        bnb_4bit_quant_type=quant.bnb_4bit_quant_type.value,
        bnb_4bit_use_double_quant=quant.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=compute_dtype(quant, model_dtype),
        bnb_4bit_quant_storage=quant.bnb_4bit_quant_storage.value,
    )


@quant_method("bitsandbytes")
class BitsAndBytes(QuantMethod):
    package = "bitsandbytes"
    extra = "quant"
    nothing_quantized_hint = "Check quant.llm_int8_skip_modules, and that the model's linear layers are nn.Linear"

    def quantization_config(self, quant: QuantConfig, model_dtype: DType) -> BitsAndBytesConfig | None:
        return bnb_config(quant, model_dtype)

    def compilable(self, quant: QuantConfig) -> str | None:
        # transformers' bitsandbytes quantizers declare is_compileable False: generate would silently not compile
        return "transformers does not compile the decode step of bitsandbytes models (use quant=int4wo/int8wo: torchao)"

    def skipped_modules(self, quant: QuantConfig) -> list[str] | None:
        return list(quant.llm_int8_skip_modules) if quant.llm_int8_skip_modules else None

    def layer_scheme(self, module: torch.nn.Module) -> str | None:
        """'int8', 'nf4' or 'fp4' for a bitsandbytes layer, None for anything else."""
        import bitsandbytes as bnb

        if isinstance(module, bnb.nn.Linear8bitLt):
            return "int8"
        if isinstance(module, bnb.nn.Linear4bit):
            return module.weight.quant_type
        return None

    def weight_storage(self, quant: QuantConfig):
        from accelerate.utils import CustomDtype

        return torch.int8 if quant.bits == 8 else CustomDtype.INT4

    def state_bytes(self, model: torch.nn.Module) -> int:
        """bitsandbytes' quantization state, which `get_memory_footprint` misses (it is neither a parameter nor a
        buffer): 4-bit blocks' absmax, code and offset, with double quantization the nested state of the absmax
        itself; 8-bit rows' scales (Int8Params.SCB). Each tensor once, and none the parameters already count."""
        seen = {t.data_ptr() for t in [*model.parameters(), *model.buffers()]}
        total = 0
        for module in model.modules():
            weight = getattr(module, "weight", None)
            state = getattr(weight, "quant_state", None)
            nested = getattr(state, "state2", None)
            tensors = [getattr(weight, "SCB", None)]
            for part in (state, nested):
                tensors += [getattr(part, name, None) for name in ("absmax", "code", "offset")]
            for tensor in tensors:
                if isinstance(tensor, torch.Tensor) and tensor.data_ptr() not in seen:
                    seen.add(tensor.data_ptr())
                    total += tensor.nelement() * tensor.element_size()
        return total

    def describe(self, quant: QuantConfig) -> str:
        return f"{quant.bits}-bit bitsandbytes"

    def problems(self, cfg: RunConfig) -> list[str]:
        quant, problems = cfg.quant, []
        if quant.bits not in (4, 8):
            return [f"quant.bits={quant.bits} is not a bitsandbytes scheme: use quant=8bit or quant=4bit"]
        # bitsandbytes layers run on the GPU only; transformers refuses CPU placement unless those modules stay fp32
        if cfg.hardware.offload and not quant.llm_int8_enable_fp32_cpu_offload:
            problems.append(
                f"hardware.offload=true with quant={quant.name}: modules that land on the CPU cannot be "
                "bitsandbytes layers. Set quant.llm_int8_enable_fp32_cpu_offload=true (they stay unquantized, in "
                "fp32), or drop hardware.offload"
            )
        if quant.bits == 4:
            problems += self._cpu_4bit_blocks(cfg)
        return problems

    def _cpu_4bit_blocks(self, cfg: RunConfig) -> list[str]:
        """bitsandbytes' CPU 4-bit kernel groups each weight row in blocks of 64: a Linear layer whose input size
        is not a multiple of 64 quantizes, then fails at its first forward pass with a reshape error."""
        from runner.quant.sizes import empty_preset, quantizable_linears  # an empty model: CPU 4-bit runs only

        device = device_or_none(cfg.hardware)
        if not cfg.backend.runs_torch_modules or device is None or device.type != "cpu":
            return []  # no device: device_exists reports it
        model = empty_preset(cfg.model)
        odd = [
            f"{name} ({model.get_submodule(name).in_features})"
            for name in quantizable_linears(model, cfg.quant)
            if model.get_submodule(name).in_features % CPU_4BIT_BLOCK
        ]
        if not odd:
            return []
        return [
            f"quant={cfg.quant.name} on the CPU needs Linear input sizes divisible by {CPU_4BIT_BLOCK} "
            f"(bitsandbytes' CPU 4-bit blocks); model={cfg.model.name} has {', '.join(odd[:3])}. "
            "Run on a GPU (hardware=cuda), or use quant=8bit"
        ]
