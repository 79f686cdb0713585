"""How close a run gets to the hardware limit: FLOPs against peak for a forward pass, bytes against
memory bandwidth for decoding."""

from runner.roofline.analysis import gpus_in_use, roofline

__all__ = ["gpus_in_use", "roofline"]
