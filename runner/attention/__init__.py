"""Attention implementations: what each needs (implementations), which architectures have them (support),
forced SDPA kernels (kernels), and what actually ran (probe)."""
