"""Why test_falcon_7b_shapes_on_gpu_generate_with_kv_cache_agrees[left] read 0.183 (bound 0.05) on the 2x H200 host."""
import torch
from torch.profiler import ProfilerActivity, profile
from runner.attention.probe import SDPA_KERNEL_OPS
from runner.convert import falcon_attention
from tests.test_falcon_attention import falcon_7b_on_gpu


def steps_rel(eager, fused, ids, mask, new_tokens=8):
    options = {"max_new_tokens": new_tokens, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        out = fused.generate(ids, attention_mask=mask, output_logits=True, return_dict_in_generate=True, **options)
        steps = torch.stack(out.logits, dim=1).float()
        full = torch.cat([mask, torch.ones_like(mask[:, :new_tokens])], dim=1)
        exp = eager(out.sequences, attention_mask=full).logits[:, ids.shape[1] - 1 : -1].float()
    d = (steps - exp).abs()
    scale = exp.abs().max()
    per = (d.amax(dim=-1) / scale)  # rows x steps
    return (d.max() / scale).item(), per.cpu().numpy().round(4).tolist(), bool(torch.isfinite(steps).all())


for trial in range(2):
    for side in ("left", None):
        eager, fused, ids, mask = falcon_7b_on_gpu(512, side)
        print(f"trial {trial} side {side} ids[0,:4]={ids[0,:4].tolist()} sum={int(ids.sum())}")
        conv = falcon_attention.convert(fused)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            rel, per, finite = steps_rel(eager, fused, ids, mask)
        kernels = sorted({SDPA_KERNEL_OPS[e.name] for e in prof.events() if e.name in SDPA_KERNEL_OPS})
        print(f"  converted: rel {rel:.4f} finite {finite} kernels {kernels}\n  per row/step {per}")
        for k, b in (("math", torch.nn.attention.SDPBackend.MATH), ("efficient", torch.nn.attention.SDPBackend.EFFICIENT_ATTENTION), ("cudnn", torch.nn.attention.SDPBackend.CUDNN_ATTENTION)):
            try:
                with torch.nn.attention.sdpa_kernel([b]):
                    rel, per, finite = steps_rel(eager, fused, ids, mask)
                print(f"  forced {k}: rel {rel:.4f} finite {finite} per {per}")
            except Exception as e:
                print(f"  forced {k}: {type(e).__name__}: {str(e)[:150]}")
        conv.reverse(fused)
        rel, per, finite = steps_rel(eager, fused, ids, mask)
        print(f"  unconverted sdpa: rel {rel:.4f} per {per}")
        del eager, fused
        torch.cuda.empty_cache()
