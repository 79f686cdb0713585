"""runner: declarative GPU inference pipelines for Transformers models."""

from runner.library_noise import quiet_library_noise

__version__ = "0.1.0"

quiet_library_noise()  # before any runner module imports torch, transformers or torchao
