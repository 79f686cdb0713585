"""gemlite (quant=int4wo_gemlite, int8wo_gemlite): gemlite's Triton kernels for int4 and int8 weights, through
transformers' TorchAoConfig with the runner's GemliteConfig (runner/quant/gemlite_weights.py).

A torchao method in all but its kernels: the weight is torchao's UIntxBitPackedTensor, so the census, the real byte
count and the unwrapping before compile are the torchao plugin's. Where torchao's int4 kernel on Hopper (tinygemm)
reads about a third of the memory bandwidth at batch 1, gemlite's kernels are written for one-row products; they
need a CUDA GPU (Triton) and float16 or bfloat16 weights."""

from __future__ import annotations

import importlib.util

from runner.config.model import DType
from runner.config.quant import Int4QParams, QuantConfig
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.quant.base import quant_method
from runner.quant.methods.torchao import TorchAo, int_weight_problems, int_weight_storage

DTYPES = (DType.bfloat16, DType.float16)


@quant_method("gemlite")
class Gemlite(TorchAo):
    package = "gemlite"
    extra = "gemlite"

    def quantization_config(self, quant: QuantConfig, model_dtype: DType):
        from transformers import TorchAoConfig

        from runner.quant.gemlite_weights import GemliteConfig

        if quant.bits == 8:  # one scale per output row: no groups, no zero points to optimize
            config = GemliteConfig(bits=8, group_size=None, hqq=False)
        else:
            config = GemliteConfig(bits=4, group_size=quant.group_size, hqq=self._hqq(quant))
        return TorchAoConfig(quant_type=config, modules_to_not_convert=self._skip_patterns(quant))

    @staticmethod
    def _hqq(quant: QuantConfig) -> bool:
        return quant.int4_choose_qparams_algorithm == Int4QParams.hqq

    def weight_storage(self, quant: QuantConfig):
        return int_weight_storage(quant)

    def describe(self, quant: QuantConfig) -> str:
        return f"gemlite int{quant.bits}"

    def options_record(self, quant: QuantConfig) -> dict:
        record = {"kernels": "gemlite", "bits": quant.bits}
        if quant.bits == 4:
            record |= {"group_size": quant.group_size, "qparams": "hqq" if self._hqq(quant) else "min_max"}
        return record

    def problems(self, cfg: RunConfig) -> list[str]:
        quant = cfg.quant
        problems = int_weight_problems(quant, "gemlite's weight-only kernels here")
        if cfg.model.dtype not in DTYPES:
            problems.append(
                f"quant={quant.name} with model.dtype={cfg.model.dtype.value}: gemlite's kernels take float16 or "
                "bfloat16 activations; set model.dtype=bfloat16"
            )
        if importlib.util.find_spec("torchao") is None:
            problems.append(f"quant={quant.name} holds its weights in torchao tensors: pip install 'runner[gemlite]'")
        device = device_or_none(cfg.hardware)
        if device is not None and device.type != "cuda":
            where = "the CPU" if device.type == "cpu" else device.type
            problems.append(
                f"quant={quant.name} needs a CUDA GPU, and this run is on {where}: gemlite's kernels are Triton "
                "kernels for CUDA; use quant=int8wo (or int4wo with quant.int4_packing_format=inductor) here"
            )
        return problems
