"""quant=none: the model runs in model.dtype; nothing to load with, nothing to prove."""

from __future__ import annotations

from runner.config.model import DType
from runner.config.quant import QuantConfig
from runner.config.run import RunConfig
from runner.quant.base import QuantMethod, quant_method


@quant_method("none")
class NoQuantization(QuantMethod):
    def quantizes(self, quant: QuantConfig) -> bool:
        return False

    def quantization_config(self, quant: QuantConfig, model_dtype: DType) -> None:
        return None

    def problems(self, cfg: RunConfig) -> list[str]:
        if cfg.quant.bits is not None:
            bits = cfg.quant.bits
            return [f"quant.bits={bits} with quant.method=none quantizes nothing: use quant=8bit, 4bit, int8wo, ..."]
        return []

    def describe(self, quant: QuantConfig) -> str:
        return "unquantized"
