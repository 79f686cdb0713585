"""Schema of the `quant` group: which quantization method (a plugin in runner/quant/) and its options.

`method` names a registered plugin (none, bitsandbytes, torchao, gemlite, triton;
`runner/quant/methods/<method>.py`); the fields of each block carry the library's own names, so its documentation
applies as is. A method reads only its own block (gemlite and triton, whose weights are torchao tensors, read
torchao's): 8-bit fields are ignored by 4-bit runs, bitsandbytes fields by torchao runs, and the other way round."""

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


class TorchAoScheme(str, Enum):
    """torchao's configs, as TorchAoConfig(quant_type=...) takes them."""

    int8wo = "int8wo"  # Int8WeightOnlyConfig: int8 weights per channel, bf16 activations
    int4wo = "int4wo"  # Int4WeightOnlyConfig: int4 weights in groups of `group_size`
    fp8wo = "fp8wo"  # Float8WeightOnlyConfig: float8 e4m3 weights
    fp8dq = "fp8dq"  # Float8DynamicActivationFloat8WeightConfig: float8 weights and activations (Hopper)


class Int4Packing(str, Enum):
    """torchao's `int4_packing_format`: the layout the int4 kernel reads (torchao 0.18)."""

    tile_packed_to_4d = "tile_packed_to_4d"  # CUDA tinygemm, in PyTorch itself (the one measured on the H200)
    plain = "plain"  # CUDA, kernels of the `mslk` package
    preshuffled = "preshuffled"  # CUDA (Hopper), kernels of the `mslk` package
    # the runner's own layout (runner/quant/packed_int4.py): unpacked in PyTorch ops, so that the compiled decode
    # step fuses it into inductor's kernel; any device and float dtype
    inductor = "inductor"


class Int4QParams(str, Enum):
    """torchao's `int4_choose_qparams_algorithm`: how scales and zero points are found."""

    tinygemm = "tinygemm"
    hqq = "hqq"  # half-quadratic optimisation of the scales (better quality, slower to quantize)


@dataclass
class QuantConfig:
    name: str = "none"
    method: str = "none"  # a registered quantization method: none, bitsandbytes, torchao, gemlite, triton
    bits: int | None = None  # bits per quantized weight (None: no quantization); bitsandbytes: 8 or 4
    # bitsandbytes 8-bit (LLM.int8)
    llm_int8_threshold: float = 6.0  # activations above this magnitude are outliers, multiplied in 16-bit
    llm_int8_skip_modules: list[str] | None = None  # modules kept unquantized; replaces the default (lm_head)
    llm_int8_enable_fp32_cpu_offload: bool = False  # modules placed on the CPU stay unquantized in fp32
    # bitsandbytes 4-bit
    bnb_4bit_quant_type: FourBitType = FourBitType.fp4
    bnb_4bit_use_double_quant: bool = False  # quantize the quantization constants too (~0.4 bit/param less)
    bnb_4bit_compute_dtype: DType | None = None  # dtype of the matmuls; None: the model's dtype
    bnb_4bit_quant_storage: StorageDType = StorageDType.uint8
    # torchao (TorchAoConfig)
    scheme: TorchAoScheme | None = None
    group_size: int = 128  # int4wo, int4wo_gemlite, int4wo_triton: weights per scale and zero point (32, 64, 128, 256)
    int4_packing_format: Int4Packing = Int4Packing.tile_packed_to_4d  # int4wo: the kernel's weight layout
    # int4wo: hqq for better scales; int4wo_gemlite: hqq (its default) or tinygemm, meaning the plain min/max grid
    int4_choose_qparams_algorithm: Int4QParams = Int4QParams.tinygemm
    modules_to_not_convert: list[str] | None = None  # torchao: modules kept unquantized (default: lm_head)
