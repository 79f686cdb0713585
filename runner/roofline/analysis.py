"""The roofline section of a run's record: achieved rate against the device's ceilings."""

from __future__ import annotations

from typing import Any

import torch

from runner.record import Measurements, Record
from runner.roofline.cost import Shape, decode_bytes_per_step, decode_flops, forward_flops
from runner.roofline.gpus import ceilings_for


def _share(value: float, ceiling: float | None) -> float | None:
    return value / ceiling if ceiling else None


def roofline(
    model: torch.nn.Module,
    record: Record,
    *,
    causal: bool,
    batch: int,
    seq: int,
    device_name: str | None,
    peak_tflops: float | None = None,
    bandwidth_gbs: float | None = None,
    gpus: int = 1,
) -> dict[str, Any]:
    limits = ceilings(device_name, peak_tflops, bandwidth_gbs, gpus)
    peak, bandwidth = limits["peak_tflops"], limits["bandwidth_gbs"]
    shape = Shape.of(model, causal)
    section: dict[str, Any] = {"device": device_name, "ceilings": limits}
    measurements = record.measurements or Measurements()
    if (forward := measurements.forward) and (latency := forward.phase("latency")):
        flops = forward_flops(shape, batch, seq)
        achieved = flops / latency.mean / 1e12
        section["forward"] = {"flops": flops, "achieved_tflops": achieved, "share_of_peak": _share(achieved, peak)}
    if (generate := measurements.generate) and (per_token := generate.phase("per_token")):
        new_tokens = measurements.tokens.new_tokens_per_row
        weight_bytes = record.footprint_bytes() or 0
        moved = decode_bytes(model, shape, weight_bytes, batch, seq, new_tokens)
        achieved = moved / per_token.mean / 1e9
        prefill_flops = forward_flops(shape, batch, seq)
        section["decode"] = {
            "bytes_per_token_step": moved,
            "achieved_gbs": achieved,
            "share_of_bandwidth": _share(achieved, bandwidth),
            "floor_ms_per_token": moved / bandwidth / 1e6 if bandwidth else None,
            **decode_bound(moved, weight_bytes, shape, batch, seq + new_tokens / 2, limits),
        }
        decode_tflops = section["decode"]["flops_per_token_step"] / per_token.mean / 1e12
        section["decode"]["share_of_peak"] = _share(decode_tflops, peak)
        prefill_tflops = prefill_flops / generate.phase("prefill").mean / 1e12
        section["prefill"] = {
            "flops": prefill_flops,
            "achieved_tflops": prefill_tflops,
            "share_of_peak": _share(prefill_tflops, peak),
        }
    return section


def ceilings(
    device_name: str | None, peak_tflops: float | None = None, bandwidth_gbs: float | None = None, gpus: int = 1
) -> dict:
    """The dense bf16 peak and memory bandwidth of the `gpus` GPUs a run uses (tensor-parallel ranks, the GPUs of
    a split model): one GPU's (the overrides where given, else the table of known GPUs) times their number."""
    known = ceilings_for(device_name)
    peak = peak_tflops or (known.peak_tflops if known else None)
    bandwidth = bandwidth_gbs or (known.bandwidth_gbs if known else None)
    gpus = max(gpus, 1)
    return {
        "peak_tflops": peak * gpus if peak else None,
        "bandwidth_gbs": bandwidth * gpus if bandwidth else None,
        "gpus": gpus,
        "per_gpu": {"peak_tflops": peak, "bandwidth_gbs": bandwidth},
        "source": "override" if (peak_tflops or bandwidth_gbs) else (known.name if known else None),
    }


def gpus_in_use(hardware, devices: list[torch.device]) -> int:
    """GPUs whose ceilings add up for a run: tensor-parallel ranks, or the GPUs a split model is placed on."""
    from runner.config.hardware import DeviceKind
    from runner.distributed.tp import tp_size

    if hardware.kind == DeviceKind.tp and not hardware.tp_on_cpu:
        return tp_size(hardware)
    return max(len({d for d in devices if d.type == "cuda"}), 1)


def decode_bytes(
    model: torch.nn.Module, shape: Shape, weight_bytes: int, batch: int, seq: int, new_tokens: int
) -> float:
    """Bytes one decode step moves: every weight, and the KV cache at the mean context over `new_tokens` steps
    after a prompt of `seq`."""
    dtype_bytes = torch.finfo(_activation_dtype(model)).bits // 8
    return decode_bytes_per_step(weight_bytes, shape, batch, seq + new_tokens / 2, dtype_bytes)


def _activation_dtype(model: torch.nn.Module) -> torch.dtype:
    dtype = getattr(model, "dtype", torch.float32)
    return dtype if dtype.is_floating_point else torch.float16


def decode_bound(moved: float, weight_bytes: float, shape: Shape, batch: int, context: float, limits: dict) -> dict:
    """Which ceiling one decode step meets first, and the batch where its Linear layers turn from bandwidth- to
    compute-bound (their matmul time reaches the time to read their weights; that batch is the same for every
    step). The KV cache read grows with the batch as its attention FLOPs do, so attention stays bandwidth-bound."""
    flops = decode_flops(shape, batch, context)
    peak, bandwidth = limits["peak_tflops"], limits["bandwidth_gbs"]
    if not (peak and bandwidth):
        return {"flops_per_token_step": flops}
    compute_s, memory_s = flops / (peak * 1e12), moved / (bandwidth * 1e9)
    linear_row_s = 2 * shape.linear_macs_per_token / (peak * 1e12)  # matmul time of one more row
    return {
        "flops_per_token_step": flops,
        "bound": "compute" if compute_s > memory_s else "bandwidth",
        "linear_ridge_batch": weight_bytes / (bandwidth * 1e9) / linear_row_s,
    }
