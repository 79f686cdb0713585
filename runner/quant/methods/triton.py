"""triton (quant=int4wo_triton, int8wo_triton): the runner's own Triton matrix-vector kernels for int4 and int8
weights (runner/quant/triton_gemv.py), through transformers' TorchAoConfig with the runner's TritonWeightConfig
(runner/quant/triton_weights.py).

A torchao method in all but its kernels and layout: the weights are torchao tensor subclasses, so the census, the
real byte count and the unwrapping before compile are the torchao plugin's. Written because at one row every int4
kernel on this stack read at most 34 % of the H200's bandwidth (tinygemm, gemlite, FBGEMM: docs/benchmarks.md
§6f, §6i, §6j). The kernels run for inputs of a few rows on a CUDA GPU (a decode step); elsewhere the layers
dequantize in PyTorch ops, so the method runs on the CPU too (slowly: it is there to be tested, not to be fast).
int4 uses the plain min/max grid (runner/quant/int4_grid.py); int8 one scale per output row."""

from __future__ import annotations

import importlib.util

from runner.config.model import DType
from runner.config.quant import Int4QParams, QuantConfig
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.quant.base import quant_method
from runner.quant.methods.torchao import TorchAo, int_weight_problems, int_weight_storage


@quant_method("triton")
class Triton(TorchAo):
    weights_join_rows = True  # runner/quant/dequantizing_weight.py: q/k/v and gate/up fuse into one kernel each
    prefers_fused_projections = True  # fused, int4 decodes 1.13x and int8 1.21x faster on the H200 (§6k)
    fused_decode_reads = True  # its int4/int8 kernels take the fused decode step's norm, residual and SiLU * up
    nothing_quantized_hint = (
        "Check quant.modules_to_not_convert, and that Linear input sizes are multiples of quant.group_size (int4) "
        "or of 32 (int8)"
    )

    def quantization_config(self, quant: QuantConfig, model_dtype: DType):
        from transformers import TorchAoConfig

        from runner.quant.triton_weights import TritonWeightConfig

        config = TritonWeightConfig(bits=quant.bits, group_size=quant.group_size)
        return TorchAoConfig(quant_type=config, modules_to_not_convert=self._skip_patterns(quant))

    def weight_storage(self, quant: QuantConfig):
        return int_weight_storage(quant)

    def before_compile(self, model):
        """Each Linear holds its weight's packed tensors and calls the kernel (runner/quant/kernel_linears.py), in
        place of torchao's unwrapping, whose per-layer guards cost the host about as much as the int4 step's GPU
        work (docs/benchmarks.md §6l)."""
        from runner.quant.kernel_linears import KernelLinears

        return KernelLinears(model)

    def describe(self, quant: QuantConfig) -> str:
        return f"runner Triton int{quant.bits}"

    def options_record(self, quant: QuantConfig) -> dict:
        from runner.quant.triton_ops import KERNEL_ROWS

        record = {"kernels": "runner triton", "bits": quant.bits, "kernel_rows": KERNEL_ROWS}
        return record | ({"group_size": quant.group_size, "qparams": "min_max"} if quant.bits == 4 else {})

    def problems(self, cfg: RunConfig) -> list[str]:
        quant = cfg.quant
        problems = int_weight_problems(quant, "the runner's Triton kernels")
        if quant.bits == 4 and quant.int4_choose_qparams_algorithm == Int4QParams.hqq:
            problems.append(
                f"quant.int4_choose_qparams_algorithm=hqq: quant={quant.name} uses the plain min/max grid "
                "(tinygemm, the default); use quant=int4wo_gemlite for HQQ scales"
            )
        device = device_or_none(cfg.hardware)
        if device is not None and device.type == "cuda" and importlib.util.find_spec("triton") is None:
            problems.append(
                f"quant={quant.name} on a CUDA GPU runs Triton kernels, and Triton is not installed (PyTorch's CUDA "
                "builds ship it): pip install triton"
            )
        return problems
