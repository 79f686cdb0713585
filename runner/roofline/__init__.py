"""How close a run gets to the hardware limit: FLOPs against peak for a forward pass, bytes against
memory bandwidth for decoding."""

from runner.roofline.analysis import roofline

__all__ = ["roofline"]
