"""Run a session with its inputs and outputs bound to torch tensors on the run's device (I/O binding): no
copy through host memory, and outputs are torch tensors the stages and scenarios use as they are.

On a GPU the CUDA (or TensorRT) provider runs on `stream`, a torch stream given to it as its
`user_compute_stream`: the backend's inference context makes it torch's current stream, so the clock's events
and torch's own work (argmax, the mask's growth) queue on the stream ONNX Runtime computes on, and a run needs
no host synchronize. Called from another stream, the two streams wait for each other on the device."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

NUMPY_TYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64, torch.int32: np.int32}
NO_SYNC_AFTER_RUN = "disable_synchronize_execution_providers"  # ORT's run option: the stream orders the work


@dataclass
class Bound:
    """A binding ready to run: its output tensors, and the input buffers that must outlive the run."""

    binding: object
    outputs: dict[str, torch.Tensor]
    keep: list[torch.Tensor] = field(default_factory=list)


class BoundSession:
    def __init__(self, session, device: torch.device, stream: torch.cuda.Stream | None = None) -> None:
        self.session = session
        self.device = device
        self.device_type = "cuda" if device.type == "cuda" else "cpu"
        self.device_id = device.index or 0
        self.stream = stream
        self.run_options = None
        if stream is not None:
            import onnxruntime as ort

            self.run_options = ort.RunOptions()
            self.run_options.add_run_config_entry(NO_SYNC_AFTER_RUN, "1")

    def bind(self, inputs: dict[str, torch.Tensor], outputs: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> Bound:
        """Binds inputs and freshly allocated outputs (`outputs` maps each wanted output to its shape and dtype)."""
        binding = self.session.io_binding()
        keep = []  # tensors whose memory ORT reads must outlive the run
        for name, tensor in inputs.items():
            # an empty tensor (the prefill's KV cache) has no address: bind a one-element buffer with its shape
            buffer = tensor.contiguous() if tensor.numel() else torch.empty(1, dtype=tensor.dtype, device=tensor.device)
            keep.append(buffer)
            shape, kind = tuple(tensor.shape), NUMPY_TYPES[tensor.dtype]
            binding.bind_input(name, self.device_type, self.device_id, kind, shape, buffer.data_ptr())
        results = {}
        for name, (shape, dtype) in outputs.items():
            results[name] = torch.empty(shape, dtype=dtype, device=self.device)
            binding.bind_output(
                name, self.device_type, self.device_id, NUMPY_TYPES[dtype], shape, results[name].data_ptr()
            )
        return Bound(binding, results, keep)

    def run_bound(self, bound: Bound) -> dict[str, torch.Tensor]:
        """Runs a binding (again: its outputs are overwritten); returns its output tensors."""
        if self.stream is None:
            if self.device_type == "cuda":  # ORT on its own stream: inputs written on torch's must be complete
                torch.cuda.synchronize(self.device)
            self.session.run_with_iobinding(bound.binding)
            bound.binding.synchronize_outputs()
            return bound.outputs
        caller = torch.cuda.current_stream(self.device)
        if caller != self.stream:
            self.stream.wait_stream(caller)
        self.session.run_with_iobinding(bound.binding, self.run_options)
        if caller != self.stream:
            caller.wait_stream(self.stream)
        return bound.outputs

    def run(self, inputs: dict[str, torch.Tensor], outputs: dict[str, tuple[tuple[int, ...], torch.dtype]]):
        """Binds and runs once; returns the output tensors."""
        return self.run_bound(self.bind(inputs, outputs))

    @contextlib.contextmanager
    def streamed(self):
        """Makes the provider's stream torch's current one (entered around warmup and the measured calls); the
        streams wait for each other on the device at entry and exit, so work queued before is seen and work
        after sees the results."""
        if self.stream is None:
            yield
            return
        before = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(before)
        try:
            with torch.cuda.stream(self.stream):
                yield
        finally:
            before.wait_stream(self.stream)
