"""Schema of the `quant` group: bitsandbytes quantization, built as a `BitsAndBytesConfig`.

The fields after `bits` carry BitsAndBytesConfig's own names, so the library's documentation applies as is;
`runner/quant/bnb.py` passes them through. 8-bit fields are ignored by 4-bit runs and the other way round."""

from dataclasses import dataclass
from enum import Enum

from runner.config.model import DType


class FourBitType(str, Enum):
    nf4 = "nf4"  # NormalFloat: quantiles of a normal distribution (QLoRA), usually the better of the two
    fp4 = "fp4"  # 4-bit float: BitsAndBytesConfig's default


class StorageDType(str, Enum):
    """How packed 4-bit weights are stored; only the container changes, not the precision."""

    uint8 = "uint8"
    int8 = "int8"
    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"


@dataclass
class QuantConfig:
    name: str = "none"
    bits: int | None = None  # None: no quantization; 8: LLM.int8(); 4: nf4/fp4
    # 8-bit (LLM.int8)
    llm_int8_threshold: float = 6.0  # activations above this magnitude are outliers, multiplied in 16-bit
    llm_int8_skip_modules: list[str] | None = None  # modules kept unquantized; replaces the default (lm_head)
    llm_int8_enable_fp32_cpu_offload: bool = False  # modules placed on the CPU stay unquantized in fp32
    # 4-bit
    bnb_4bit_quant_type: FourBitType = FourBitType.fp4
    bnb_4bit_use_double_quant: bool = False  # quantize the quantization constants too (~0.4 bit/param less)
    bnb_4bit_compute_dtype: DType | None = None  # dtype of the matmuls; None: the model's dtype
    bnb_4bit_quant_storage: StorageDType = StorageDType.uint8
