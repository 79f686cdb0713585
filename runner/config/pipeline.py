"""Schema of the `pipeline` group: which stages run, in order."""

from dataclasses import dataclass, field


@dataclass
class ConvertConfig:
    bettertransformer: bool = False
    # generate with a static KV cache and a compiled decode step (torch.compile, CUDA graphs)
    compile: bool = False


@dataclass
class SaveConfig:
    model: bool = False  # write save_pretrained output into the run folder
    directory: str = "model"  # relative to the run folder


DEFAULT_STAGES = ("load", "convert", "warmup", "infer", "compare", "quality", "verify", "reverse", "save")


@dataclass
class PipelineConfig:
    name: str = "default"
    stages: list[str] = field(default_factory=lambda: list(DEFAULT_STAGES))
