"""The `quant` group -> transformers' BitsAndBytesConfig, field for field."""

from __future__ import annotations

import logging

from transformers import BitsAndBytesConfig

from runner.config.model import DType
from runner.config.quant import QuantConfig


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


logging.getLogger("bitsandbytes.autograd._functions").addFilter(_Once())


def is_quantized(quant: QuantConfig) -> bool:
    return quant.bits is not None


def compute_dtype(quant: QuantConfig, model_dtype: DType) -> str:
    """4-bit matmuls run in this dtype; by default the model's own (BitsAndBytesConfig's float32 default would
    make a float16 model slower and silently change what is measured)."""
    return (quant.bnb_4bit_compute_dtype or model_dtype).value


def bnb_config(quant: QuantConfig, model_dtype: DType) -> BitsAndBytesConfig | None:
    if not is_quantized(quant):
        return None
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
