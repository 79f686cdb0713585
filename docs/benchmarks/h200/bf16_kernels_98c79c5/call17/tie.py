# bf16: compiled decode (the runner's settings) against plain generate; where a row differs, the plain run's top-2
# logit gap at that step (a near-tie flips with kernel rounding)
import torch
from runner.backends.pytorch.compile import compile_options, deferred_stop_check
from runner.config.load import to_run_config
from runner.models.build import build_random
from tests.conftest import compose_config
for dtype in ("bfloat16", "float32"):
    cfg = to_run_config(compose_config(["hardware=cuda", "scenario=generate", f"model.dtype={dtype}", "convert.compile=true"]))
    torch.manual_seed(0)
    model = build_random(cfg.model, "sdpa", torch.device("cuda")).eval()
    for seed in range(3):
        torch.manual_seed(seed)
        ids = torch.randint(0, 1000, (2, 16), device="cuda")
        common = {"max_new_tokens": 24, "min_new_tokens": 24, "do_sample": False}
        plain = model.generate(ids, **common, output_scores=True, return_dict_in_generate=True)
        with deferred_stop_check(cfg):
            for _ in range(2):
                fast = model.generate(ids, **common, **compile_options(cfg))
        for row in range(2):
            same = plain.sequences[row] == fast[row]
            if same.all():
                print(dtype, seed, row, "identical"); continue
            step = int((~same).nonzero()[0]) - 16
            top = plain.scores[step][row].float().topk(2).values
            print(dtype, seed, row, f"differs at step {step}; plain top-2 logits {top.tolist()}, gap {float(top[0] - top[1]):.4g}")
    torch._dynamo.reset()
