"""Schema of the `attention` group."""

from dataclasses import dataclass


@dataclass
class AttentionConfig:
    name: str = "sdpa"
    implementation: str = "sdpa"  # the value passed as `attn_implementation=`
