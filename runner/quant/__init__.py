"""Quantization: the methods (runner/quant/methods/, one plugin module each: none, bitsandbytes, torchao,
gemlite, triton), found by
name in QUANT_METHODS, and the proof that one happened (report.py, sizes.py, compat.py: imported by the code that
loads a model, never by the checks).

Importing this package registers every method and nothing heavier: adding a method is one module in methods/ and
one `conf/quant/*.yaml` (docs/quantization.md)."""

import runner.quant.methods  # noqa: F401  (registers every method)
from runner.quant.base import QUANT_METHODS, QuantMethod, is_quantized, method_of

__all__ = ["QUANT_METHODS", "QuantMethod", "is_quantized", "method_of"]
