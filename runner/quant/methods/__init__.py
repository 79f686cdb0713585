"""The quantization methods, one module each; every module here is imported, so a method's `@quant_method`
decorator registers it. A method module imports configs and the interface only: the checks read its declarations
before anything loads, and it imports its library (bitsandbytes, torchao, gemlite, triton) where it quantizes or
measures. A method that extends another (gemlite and triton extend torchao: their weights are torchao tensors) imports
that method's module."""

from runner.discovery import import_all

import_all(__name__)
