"""Datasheet ceilings of known GPUs: dense bf16 tensor-core TFLOP/s (no sparsity) and memory bandwidth.

Override per run with `roofline.peak_tflops` / `roofline.bandwidth_gbs` (for a GPU missing here, or to use
ceilings measured on your own card instead of the datasheet's)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ceilings:
    name: str
    peak_tflops: float  # dense bf16
    bandwidth_gbs: float  # GB/s (1e9 bytes)


# Ordered: the first entry whose every token appears in the device name wins (specific before generic).
KNOWN_GPUS: list[tuple[tuple[str, ...], Ceilings]] = [
    (("H200",), Ceilings("H200 SXM", 989.4, 4800)),
    (("H100", "PCIE"), Ceilings("H100 PCIe", 756.0, 2000)),
    (("H100", "NVL"), Ceilings("H100 NVL", 835.0, 3900)),
    (("H100",), Ceilings("H100 SXM", 989.4, 3350)),
    (("B200",), Ceilings("B200", 2250.0, 8000)),
    (("A100", "40GB"), Ceilings("A100 40GB", 312.0, 1555)),
    (("A100",), Ceilings("A100 80GB", 312.0, 2039)),
    (("L40S",), Ceilings("L40S", 362.1, 864)),
    (("L4",), Ceilings("L4", 121.0, 300)),
    (("A10G",), Ceilings("A10G", 70.0, 600)),
]


def ceilings_for(device_name: str | None) -> Ceilings | None:
    if not device_name:
        return None
    upper = device_name.upper()
    for tokens, ceilings in KNOWN_GPUS:
        if all(token in upper for token in tokens):
            return ceilings
    return None
