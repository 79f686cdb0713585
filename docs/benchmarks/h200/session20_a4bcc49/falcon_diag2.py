"""Falcon converted, left padding, bf16 7B shapes: which SDPA kernel is wrong, and is it the stride-0 key/value (PyTorch issue 191937)."""
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from runner.convert import falcon_attention
from tests.test_falcon_attention import falcon_7b_on_gpu

ORIGINAL = F.scaled_dot_product_attention
seen = {}


def contiguous_kv(q, k, v, *args, **kwargs):
    seen.setdefault("strides", (tuple(k.stride()), tuple(k.shape), None if kwargs.get("attn_mask") is None else tuple(kwargs["attn_mask"].stride())))
    return ORIGINAL(q, k.contiguous(), v.contiguous(), *args, **kwargs)


def spy(q, k, v, *args, **kwargs):
    seen.setdefault("strides", (tuple(k.stride()), tuple(k.shape), None if kwargs.get("attn_mask") is None else tuple(kwargs["attn_mask"].stride())))
    return ORIGINAL(q, k, v, *args, **kwargs)


def rel(length, backend, wrapper):
    eager, fused, ids, mask = falcon_7b_on_gpu(length, "left")
    conv = falcon_attention.convert(fused)
    F.scaled_dot_product_attention = wrapper
    seen.clear()
    try:
        options = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
        with torch.no_grad(), sdpa_kernel([backend]):
            out = fused.generate(ids, attention_mask=mask, output_logits=True, return_dict_in_generate=True, **options)
        F.scaled_dot_product_attention = ORIGINAL
        with torch.no_grad():
            steps = torch.stack(out.logits, dim=1).float()
            full = torch.cat([mask, torch.ones_like(mask[:, :8])], dim=1)
            exp = eager(out.sequences, attention_mask=full).logits[:, length - 1 : -1].float()
        d = (steps - exp).abs().amax(dim=-1) / exp.abs().max()
        return d.max().item(), d.cpu().numpy().round(3).tolist(), seen.get("strides")
    finally:
        F.scaled_dot_product_attention = ORIGINAL
        conv.reverse(fused)
        del eager, fused
        torch.cuda.empty_cache()


for length in (512, 500):
    for name, backend in (("efficient", SDPBackend.EFFICIENT_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION), ("math", SDPBackend.MATH)):
        for wname, wrapper in (("as-is", spy), ("contiguous-kv", contiguous_kv)):
            for rep in range(2):
                try:
                    r, per, strides = rel(length, backend, wrapper)
                    print(f"prompt {length} {name:9s} {wname:13s} rep {rep}: rel {r:.4f} key stride/shape/mask stride {strides} per {per}", flush=True)
                except Exception as e:
                    print(f"prompt {length} {name} {wname} rep {rep}: {type(e).__name__}: {str(e)[:120]}", flush=True)
