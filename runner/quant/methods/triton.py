"""triton (quant=int4wo_triton, int8wo_triton): the runner's own Triton matrix-vector kernels for int4 and int8
weights (runner/quant/triton_gemv.py), through transformers' TorchAoConfig with the runner's TritonWeightConfig
(runner/quant/triton_weights.py).

A torchao method in all but its kernels and layout: the weights are torchao tensor subclasses, so the census, the
real byte count and the unwrapping before compile are the torchao plugin's. Written because at one row every int4
kernel on this stack read at most 34 % of the H200's bandwidth (tinygemm, gemlite, FBGEMM: docs/benchmarks.md
§6f, §6i, §6j). The kernels run for inputs of a few rows on a CUDA GPU (a decode step); elsewhere the layers
dequantize in PyTorch ops, so the method runs on the CPU too (slowly: it is there to be tested, not to be fast)."""

from __future__ import annotations

import importlib.util

from runner.config.model import DType
from runner.config.quant import QuantConfig
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.quant.base import quant_method
from runner.quant.methods.torchao import GROUP_SIZES, TorchAo

BITS = (4, 8)


@quant_method("triton")
class Triton(TorchAo):
    def quantization_config(self, quant: QuantConfig, model_dtype: DType):
        from transformers import TorchAoConfig

        from runner.quant.triton_weights import TritonWeightConfig

        config = TritonWeightConfig(bits=quant.bits, group_size=quant.group_size)
        return TorchAoConfig(quant_type=config, modules_to_not_convert=self._skip_patterns(quant))

    def weight_storage(self, quant: QuantConfig):
        import torch
        from accelerate.utils import CustomDtype

        return CustomDtype.INT4 if quant.bits == 4 else torch.int8

    def describe(self, quant: QuantConfig) -> str:
        return f"runner Triton int{quant.bits}"

    def options_record(self, quant: QuantConfig) -> dict:
        from runner.quant.triton_weights import KERNEL_ROWS

        record = {"kernels": "runner triton", "bits": quant.bits, "kernel_rows": KERNEL_ROWS}
        return record | ({"group_size": quant.group_size} if quant.bits == 4 else {})

    def problems(self, cfg: RunConfig) -> list[str]:
        quant, problems = cfg.quant, []
        if quant.bits not in BITS:
            problems.append(f"quant.bits={quant.bits}: the runner's Triton kernels take 4 or 8")
        if quant.bits == 4 and quant.group_size not in GROUP_SIZES:
            sizes = ", ".join(map(str, GROUP_SIZES))
            problems.append(f"quant.group_size={quant.group_size}: quant={quant.name} takes {sizes}")
        if importlib.util.find_spec("torchao") is None:
            problems.append(f"quant={quant.name} holds its weights in torchao tensors: pip install 'runner[torchao]'")
        device = device_or_none(cfg.hardware)
        if device is not None and device.type == "cuda" and importlib.util.find_spec("triton") is None:
            problems.append(
                f"quant={quant.name} on a CUDA GPU runs Triton kernels, and Triton is not installed (PyTorch's CUDA "
                "builds ship it): pip install triton"
            )
        return problems
