"""runner: declarative GPU inference pipelines for Transformers models."""

__version__ = "0.1.0"
