"""Quantization methods, one plugin module each (none, bitsandbytes, torchao), and the proof that one happened.

Every module here is imported once, so a method's `@quant_method` decorator registers it: adding a method is
one module and one `conf/quant/*.yaml` (docs/quantization.md)."""

from runner.discovery import import_all
from runner.quant.base import QUANT_METHODS, QuantMethod, is_quantized, method_of
from runner.quant.bnb import bnb_config
from runner.quant.report import quantization_report

import_all(__name__)

__all__ = ["QUANT_METHODS", "QuantMethod", "bnb_config", "is_quantized", "method_of", "quantization_report"]
