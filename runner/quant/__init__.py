"""bitsandbytes quantization: the BitsAndBytesConfig a run loads with, and the proof that it happened."""

from runner.quant.bnb import bnb_config, is_quantized
from runner.quant.report import quantization_report

__all__ = ["bnb_config", "is_quantized", "quantization_report"]
