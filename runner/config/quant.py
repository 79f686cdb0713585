"""Schema of the `quant` group."""

from dataclasses import dataclass


@dataclass
class QuantConfig:
    name: str = "none"
