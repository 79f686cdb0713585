"""Scale out: tensor parallelism over the GPUs of one host (torchrun, transformers' tp_plan="auto"), and Hydra's
submitit / Ray launchers with per-job GPU requests for sweeps on a cluster."""
