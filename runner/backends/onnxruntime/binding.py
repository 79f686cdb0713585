"""Run a session with its inputs and outputs bound to torch tensors on the run's device (I/O binding): no
copy through host memory, and outputs are torch tensors the stages and scenarios use as they are."""

from __future__ import annotations

import numpy as np
import torch

NUMPY_TYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64, torch.int32: np.int32}


class BoundSession:
    def __init__(self, session, device: torch.device) -> None:
        self.session = session
        self.device = device
        self.device_type = "cuda" if device.type == "cuda" else "cpu"
        self.device_id = device.index or 0

    def run(self, inputs: dict[str, torch.Tensor], outputs: dict[str, tuple[tuple[int, ...], torch.dtype]]):
        """Runs the session; `outputs` maps each wanted output to its shape and dtype, returns those tensors."""
        binding = self.session.io_binding()
        keep = []  # tensors whose memory ORT reads or writes must outlive the run
        for name, tensor in inputs.items():
            # an empty tensor (the prefill's KV cache) has no address: bind a one-element buffer with its shape
            buffer = tensor.contiguous() if tensor.numel() else torch.empty(1, dtype=tensor.dtype, device=tensor.device)
            keep.append(buffer)
            binding.bind_input(
                name,
                self.device_type,
                self.device_id,
                NUMPY_TYPES[tensor.dtype],
                tuple(tensor.shape),
                buffer.data_ptr(),
            )
        results = {}
        for name, (shape, dtype) in outputs.items():
            results[name] = torch.empty(shape, dtype=dtype, device=self.device)
            binding.bind_output(
                name, self.device_type, self.device_id, NUMPY_TYPES[dtype], shape, results[name].data_ptr()
            )
        if self.device_type == "cuda":
            torch.cuda.synchronize(self.device)  # inputs written on torch's stream are complete before ORT's reads
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return results
