#!/usr/bin/env bash
# The single-GPU runs that docs/benchmarks.md (the H200 page) still lacks, each in its own folder with its own
# time limit, packed as it goes: one <study>.tgz per study in OUT (records, logs, reports, charts; no model files),
# plus h200_page.log and inductor.tgz. The GPU host returns at most 8 files of 16 MiB, 2 folder levels: run at most 6
# studies per call.
#   bash scripts/gpu/h200_page.sh [--dry-run | --pack-only] [OUT] [STUDY...]
# OUT: default $OUT, else /tmp/out. STUDY (default: all, in this order; limit in seconds, expected time on an H200):
#   padding         experiment=padding_speedup (fa4 cells run if flash-attn-4 is installed)   200  ~120
#   seed            experiment=seed_closing_example, and the same opt-350m unquantized         150  ~80
#   combinations    experiment=combinations attention=fa4: the one job that failed (only with fa4)  90  ~40
#   overhead        python scripts/overhead.py                                                  90  ~70
#   pytest_gpu      python -m pytest -m gpu, one line per test (406 s with the full kit and one GPU, 34c2d9e;
#                   over 570 s with both GPUs and a cold inductor cache, f3d12e6, whose last test, 127 s, was
#                   cut: one call's 600 s is the limit; rerun what a cut leaves, by file, as pytest_rerun does)  600  ~650
#   measure         scripts/gpu/measure.sh                                                     300  ~240
#   overhead_gpu    python scripts/overhead.py scenario.batch_size=4: the same verdict on a GPU-bound forward   150  ~90
#   decode_int4     experiment=decode_limit, int4wo in the runner's own layout (quant.int4_packing_format=inductor)  400  ~150
#   decode_fp8      experiment=decode_limit, fp8dq and fp8wo at batch 1                        600  compile-bound
#   batch_bf16      experiment=decode_limit, bf16 at batch 4, 16, 64 (issue 12's throughput chart)  500  ~300
#   batch_int4      the same for int4wo (INT4_FORMAT, default tile_packed_to_4d: tinygemm, the fastest on the H200)  600  ~400
#   batch_fp8       the same for fp8dq (FP8=fp8wo for weight-only)                             600  ~500
#                   (batch_int4, batch_fp8: BATCHES picks the batch sizes; COMPILE_MODE=reduce-overhead compiles
#                   without max-autotune, whose tuning of every matmul shape cut int4 at 64 rows, f3d12e6)
#   ort             scripts/gpu/onnxruntime.sh: minilm and fp16 distilbert-sst2 on the CUDA provider beside PyTorch  400  ~200
#   quality         experiment=quality: fa4, sdpa_efficient (smollm2; the rest ran up to 60121d6)  200  ~120
#   quality_minilm  experiment=quality_minilm: flex with 4bit, the one job cut at 60121d6        120  ~40
#   int8wo          where int8wo's step goes now (60121d6 removed its host cost): decode_profile on the 7B
#                   shapes, int8wo then bf16 without skip_guard_eval (does skipping guards cost bf16?)  560  ~450
#   decode_attention  experiment=decode_limit, bf16, attention=sdpa,sdpa_math,sdpa_efficient,flex: cuDNN's decode
#                   attention took 0.26 of a 4.3 ms step (6 %) for a 256-token cache (f641c12 profile)  420  ~300
#   gemv            scripts/gpu/gemv_probe.py: bf16 (inductor, cuBLAS), int8 (written out, torchao's), fp8 (torchao's
#                   wo, dq), int4 (inductor, split, tinygemm); then bf16 on fused q/k/v and gate/up shapes    420  >240 (cut there once)
#   falcon_generate pytest -m gpu: falcon-7b shapes generating with the KV cache against eager     90  ~30
#   pytest_rerun    pytest -m gpu of test_torchao.py and test_onnxruntime.py (what changed since the full run)  200  ~90
#   attention_llama experiment=attention_speedup, every option this host runs (fa4 too), each job its own process  600  ~1000:
#                   run it twice (resume=true goes on where the limit cut it; 17 of 40 jobs fit 600 s on 2026-11-29)
#   attention_falcon experiment=attention_speedup_falcon, the same for falcon-7b shapes (18 jobs)  450  ~450
#   attention_llama_fa4_flex        attention_llama's eager, sdpa, fa4 and flex (20 jobs)    600  ~530 (flex compiles: 26-65 s a job)
#   attention_llama_sdpa_backends   its four forced SDPA kernels (20 jobs)                   450  ~280
#   attention_falcon_fused          attention_falcon's eager, sdpa and fa4 (9 jobs)          300  ~130
#   attention_falcon_sdpa_backends  its forced SDPA kernels (9 jobs, 3 refused at once)      300  ~100
#   decode_fused    experiment=decode_limit, bf16 with convert.fuse_projections=false,true: q/k/v and gate/up as one
#                   matrix each (the gemv probe of f3d12e6: 0.32 ms a token less in the Linear layers), one session  400  ~200
#   compile_decode  experiment=compile_decode: plain generate against convert.compile=true, 7B llama bf16, batch 1,
#                   256 new tokens; the one study of conf/experiment/ no H200 has run (found at f3d12e6)  300  ~150
#   decode_fp8_ro   experiment=decode_limit, bf16, fp8dq, fp8wo compiled with mode=reduce-overhead (CUDA graphs, no
#                   max-autotune: fp8wo's max-autotune compile ran past 330 s, a7283de), bf16 as the same-mode reference  500  ~300
#   decode_fused_modes  decode_fused under both compile modes, reduce-overhead and max-autotune (4 jobs; alone on
#                   the host: the first decode_fused and decode_fp8_ro each ran beside a compile on the other GPU)  420  ~250
#   pytest_fused    pytest -m gpu tests/test_fused_projections.py: the compiled decode with fused projections  240  ~150
#   gemlite         gemlite's Triton kernels (quant=int4wo_gemlite, int8wo_gemlite): the gemv probe of their kernels
#                   beside bf16, torchao's int8 and tinygemm, then experiment=decode_limit with both and bf16  560  ~400
#   quality_gemlite experiment=quality on smollm2: bf16, int4wo_gemlite, int8wo_gemlite in groups of 64 (so that its
#                   576-wide layers qualify), eager attention as the report's baseline; int8wo_gemlite crashed there
#                   (illegal memory access) and int4wo_gemlite was cut at 300 s (f5f8a02), so int4 now runs first  420  ~300
#   gemv_fbgemm     scripts/gpu/gemv_probe.py with FBGEMM's preshuffled int4 kernel beside bf16 and tinygemm (install
#                   the kit first: bash ../shared/offline-wheels/fetch.sh .kitF fbgemm-gpu-genai==1.6.0, 35 MB)  300  ~90
#   gemlite_hunt    scripts/gpu/gemlite_shapes.py: which of smollm2's int8 shapes and row counts (1-64) gemlite gets
#                   wrong, each shape in its own process with blocking launches (40 s reached 8 rows, f5f8a02)  600  ~560
#   batch_gemlite   experiment=decode_limit, int4wo_gemlite at batch 4, 16, 64 (BATCHES), for the throughput chart  600  ~400
#   gemv_triton     the gemv probe of the runner's own Triton kernels (int4-triton, int8-triton) beside bf16, tinygemm
#                   and torchao's int8, on the 7B shapes and the fused q/k/v and gate/up shapes (5ea930d: ~250 s with
#                   autotuning)  400  ~250
#   decode_triton   experiment=decode_limit, bf16, int4wo_triton and int8wo_triton at batch 1, the Triton quants fused
#                   automatically (713a5ea: 67 + 83 + 49 s; the pinned int4 configs of ce84989 measured in §6l)  600  ~250
#   host_loop       whether the int4 step still waits for the host (§6l: 2.4 ms of GPU work, 2.6-3.7 ms a token) now
#                   that host_loop.py trims generate's loop: experiment=decode_limit bf16 and int4wo_triton, then
#                   decode_profile.py on int4wo_triton (GPU idle per step, and the host's time per part of the loop)  450  ~330
#   bf16_kernels    where bf16's 4.12 ms of GPU work a step goes (§6m: its kernels read 69 %, 75 % is asked): decode_profile
#                   with launches per step and µs per launch (each kernel's matrices, so its bandwidth), then the bf16
#                   job with inductor's benchmark_fusion (fused prologues such as SiLU·mul measured against unfused)  560  ~400
#                   (both ran at 98c79c5, §6n: the profile with PDL on; benchmark_fusion 4.37 ms/token, no gain)
#   pytest_triton   pytest -m gpu tests/test_triton_quant.py: the kernels against the dequantized product, and the
#                   compiled decode (85 s reached 4 of 10 tests at 5ea930d: each new shape autotunes)  400  ~250
#   batch_triton    experiment=decode_limit, int4wo_triton at batch 4, 16 (BATCHES): 4 rows still run the kernel,
#                   16 dequantize and multiply  600  ~350
#   quality_triton  experiment=quality on smollm2: bf16, int4wo_triton and int8wo_triton in groups of 64  420  ~250
#   pytest_gemlite  pytest -m gpu of test_gemlite.py, test_torchao.py and test_measure.py (new GPU code since 1e745d6)  400  ~200
#   attention_llama_flex16          the one cell the 2x H200 run of ea68a2e left: flex at batch 16, beside sdpa at 16
#                   for a same-machine reference (2 jobs)                                     240  ~120
#                   the four halves: both attention studies on a host with two GPUs (per_gpu.sh), e.g.
#                   attention_llama_fa4_flex,attention_falcon_sdpa_backends attention_llama_sdpa_backends,attention_falcon_fused
# Measured on 2026-11-29 with a fresh inductor cache: a 7B decode job compiles for 83 s (bf16), 244 s (int8wo) and
# more than 330 s (fp8wo) before decoding for seconds. The inductor cache survives between calls only inside
# RUNNER_CACHE on a warm machine, so the script carries it across machines: a call ends by packing
# $RUNNER_CACHE/inductor into OUT/inductor.tgz (when it fits in 16 MiB); put that file in an ignored folder of the
# checkout (default .inductor-cache/inductor.tgz, or CACHE_IN=...), carry the folder, and the next call unpacks it
# before its studies, so the same shapes skip compilation and autotuning. NO_CACHE_PACK=1 leaves it out (several
# calls of the script on one machine, one GPU each, share one cache).
# All of them take longer than one 600 s call of the device tool: split them, e.g. `padding seed combinations
# overhead` in one call and `pytest_gpu measure` in the next. The wheel kits must be installed first
# (bash .kitA/batch1/install.sh ...). --dry-run prints each study's limit and commands and runs nothing;
# --pack-only packs what an earlier call left in WORK (default /tmp/h200-page) into OUT.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 RUNNER_CACHE=${RUNNER_CACHE:-/tmp/runner-cache}
ALL=(padding seed combinations overhead overhead_gpu pytest_gpu measure decode_int4 decode_fp8 batch_bf16 batch_int4
  batch_fp8 quality quality_minilm int8wo decode_attention gemv falcon_generate ort pytest_rerun attention_llama
  attention_falcon attention_llama_fa4_flex attention_llama_sdpa_backends attention_falcon_fused
  attention_falcon_sdpa_backends attention_llama_flex16 decode_fused compile_decode decode_fp8_ro pytest_fused decode_fused_modes gemlite pytest_gemlite quality_gemlite batch_gemlite gemlite_hunt gemv_fbgemm
  gemv_triton decode_triton pytest_triton batch_triton quality_triton host_loop bf16_kernels)
declare -A LIMIT=([padding]=200 [seed]=150 [combinations]=90 [overhead]=90 [overhead_gpu]=150 [pytest_gpu]=600
  [measure]=300 [decode_int4]=400 [decode_fp8]=600 [batch_bf16]=500 [batch_int4]=600 [batch_fp8]=600 [quality]=200
  [quality_minilm]=120 [int8wo]=560 [decode_attention]=500 [gemv]=420 [falcon_generate]=90 [ort]=400 [pytest_rerun]=200 [attention_llama]=600
  [attention_falcon]=450 [attention_llama_fa4_flex]=600 [attention_llama_sdpa_backends]=450
  [attention_falcon_fused]=300 [attention_falcon_sdpa_backends]=300 [attention_llama_flex16]=240 [decode_fused]=400 [compile_decode]=300
  [decode_fp8_ro]=500 [pytest_fused]=240 [decode_fused_modes]=420 [gemlite]=560 [pytest_gemlite]=400 [quality_gemlite]=420
  [batch_gemlite]=600 [gemlite_hunt]=600 [gemv_fbgemm]=300
  [gemv_triton]=400 [decode_triton]=600 [pytest_triton]=400 [batch_triton]=600 [quality_triton]=420 [host_loop]=450 [bf16_kernels]=560)
MODE=run
case "${1:-}" in --dry-run) MODE=dry; shift ;; --pack-only) MODE=pack; shift ;; esac
OUT=${OUT:-/tmp/out}
if [ $# -gt 0 ] && [ -z "${LIMIT[$1]:-}" ]; then OUT=$1; shift; fi
STUDIES=("$@"); [ ${#STUDIES[@]} -eq 0 ] && STUDIES=("${ALL[@]}")
for s in "${STUDIES[@]}"; do
  [ -n "${LIMIT[$s]:-}" ] || { echo "unknown study '$s': one of ${ALL[*]}" >&2; exit 2; }
done
WORK=${WORK:-/tmp/h200-page}
mkdir -p "$OUT" "$WORK"
LOG=$OUT/h200_page.log

# attention_study EXPERIMENT OPTIONS: an attention study (each job its own process) over these attention options
attention_study() {
  echo "python3 -m runner -m experiment=$1 'attention=$2' timeout_s=150 resume=true hydra.sweep.dir={W}/sweep"
}

# the commands of a study, one per line, with {W} standing for its folder
commands() {
  case "$1" in
    padding) echo 'python3 -m runner -m experiment=padding_speedup hydra.sweep.dir={W}/sweep' ;;
    seed)
      echo 'python3 -m runner -m experiment=seed_closing_example hydra.sweep.dir={W}/sweep'
      # the same model and scenario without 4-bit: how much of 20 ms per token is bitsandbytes' per-call cost
      echo 'python3 -m runner model=opt-350m model.weights=random quant=none attention=eager hardware=cuda scenario=generate scenario.batch_size=1 scenario.sequence_length=64 scenario.new_tokens=32 scenario.warmup_runs=1 scenario.iterations=3 compare.enabled=false hydra.run.dir={W}/unquantized' ;;
    combinations) echo 'python3 -m runner -m experiment=combinations attention=fa4 hydra.sweep.dir={W}/sweep' ;;
    overhead) echo 'python3 scripts/overhead.py > {W}/overhead.json' ;;
    # -v: a log cut by the limit still names every test that finished and how (-q prints only dots)
    pytest_gpu) echo 'python3 -m pytest -m gpu -v -rs --durations=20 -p no:cacheprovider > {W}/pytest_gpu.log' ;;
    measure) echo 'OUT={W} bash scripts/gpu/measure.sh' ;;
    overhead_gpu) echo 'python3 scripts/overhead.py scenario.batch_size=4 > {W}/overhead.json' ;;
    decode_int4) echo "python3 -m runner -m experiment=decode_limit quant=int4wo quant.int4_packing_format=inductor hydra.sweep.dir={W}/sweep" ;;
    decode_fp8) echo "python3 -m runner -m experiment=decode_limit 'quant=fp8dq,fp8wo' hydra.sweep.dir={W}/sweep" ;;
    batch_bf16) echo "python3 -m runner -m experiment=decode_limit quant=none 'scenario.batch_size=4,16,64' hydra.sweep.dir={W}/sweep" ;;
    batch_int4) echo "python3 -m runner -m experiment=decode_limit quant=int4wo quant.int4_packing_format=${INT4_FORMAT:-tile_packed_to_4d} 'scenario.batch_size=${BATCHES:-4,16,64}'${COMPILE_MODE:+ convert.compile_options.mode=$COMPILE_MODE} hydra.sweep.dir={W}/sweep" ;;
    batch_fp8) echo "python3 -m runner -m experiment=decode_limit quant=${FP8:-fp8dq} 'scenario.batch_size=${BATCHES:-4,16,64}'${COMPILE_MODE:+ convert.compile_options.mode=$COMPILE_MODE} hydra.sweep.dir={W}/sweep" ;;
    ort) echo 'OUT={W} bash scripts/gpu/onnxruntime.sh > {W}/ort.log' ;;
    quality)
      echo "python3 -m runner -m experiment=quality 'attention=fa4,sdpa_efficient' quant=none convert.compile=false hydra.sweep.dir={W}/sweep" ;;
    quality_minilm) echo "python3 -m runner -m experiment=quality_minilm attention=flex quant=4bit convert.bettertransformer=false hydra.sweep.dir={W}/sweep" ;;
    int8wo)
      echo "python3 scripts/decode_profile.py quant=int8wo --repeats 3 > {W}/profile_int8wo.json 2> {W}/profile_int8wo.log"
      echo "python3 scripts/decode_profile.py quant=none convert.compile_options.skip_guard_eval=false --repeats 3 > {W}/profile_bf16_guards.json 2> {W}/profile_bf16_guards.log" ;;
    decode_attention) echo "python3 -m runner -m experiment=decode_limit quant=none 'attention=sdpa,sdpa_math,sdpa_efficient,flex' hydra.sweep.dir={W}/sweep" ;;
    gemv)
      # each command writes its JSON after every format (--out), so a cut keeps what finished; the costly ones last
      echo 'python3 scripts/gpu/gemv_probe.py --formats bf16 bf16-cublas int8-torchao int4-inductor-split --out {W}/gemv_probe.json'
      # q, k and v as one 12288x4096 matmul, gate and up as one 22016x4096 (gpt-fast's fusion): would it read faster?
      echo 'python3 scripts/gpu/gemv_probe.py --shapes 12288x4096 22016x4096 --formats bf16 bf16-cublas --out {W}/gemv_fused.json'
      echo 'python3 scripts/gpu/gemv_probe.py --formats fp8wo-torchao fp8dq-torchao --out {W}/gemv_fp8.json' ;;
    pytest_rerun) echo 'python3 -m pytest -m gpu -q -rs -p no:cacheprovider tests/test_torchao.py tests/test_onnxruntime.py > {W}/pytest_gpu.log' ;;
    # fa2/fa3 left out (source-only, not on the host: §10); math last, the slowest. resume=true: a study cut by its
    # limit goes on, when run again, from the first job without an ok record instead of starting over
    attention_llama) attention_study attention_speedup eager,sdpa,fa4,flex,sdpa_cudnn,sdpa_flash,sdpa_efficient,sdpa_math ;;
    attention_llama_fa4_flex) attention_study attention_speedup eager,sdpa,fa4,flex ;;
    attention_llama_sdpa_backends) attention_study attention_speedup sdpa_cudnn,sdpa_flash,sdpa_efficient,sdpa_math ;;
    attention_falcon_fused) attention_study attention_speedup_falcon eager,sdpa,fa4 ;;
    attention_falcon_sdpa_backends) attention_study attention_speedup_falcon sdpa_flash,sdpa_cudnn,sdpa_efficient ;;
    attention_llama_flex16)
      echo "python3 -m runner -m experiment=attention_speedup 'attention=sdpa,flex' scenario.batch_size=16 timeout_s=200 hydra.sweep.dir={W}/sweep" ;;
    compile_decode) echo 'python3 -m runner -m experiment=compile_decode hydra.sweep.dir={W}/sweep' ;;
    decode_fp8_ro) echo "python3 -m runner -m experiment=decode_limit 'quant=none,fp8dq,fp8wo' convert.compile_options.mode=reduce-overhead hydra.sweep.dir={W}/sweep" ;;
    decode_fused_modes) echo "python3 -m runner -m experiment=decode_limit quant=none 'convert.fuse_projections=false,true' 'convert.compile_options.mode=reduce-overhead,max-autotune' hydra.sweep.dir={W}/sweep" ;;
    pytest_fused) echo 'python3 -m pytest -m gpu -v -rs -p no:cacheprovider tests/test_fused_projections.py > {W}/pytest_gpu.log' ;;
    gemlite)
      echo 'python3 scripts/gpu/gemv_probe.py --formats bf16 int8-torchao int4-tinygemm int4-gemlite int8-gemlite --out {W}/gemv_gemlite.json'
      echo "python3 -m runner -m experiment=decode_limit 'quant=int4wo_gemlite,int8wo_gemlite,none' hydra.sweep.dir={W}/sweep" ;;
    pytest_gemlite) echo 'python3 -m pytest -m gpu -v -rs -p no:cacheprovider tests/test_gemlite.py tests/test_torchao.py tests/test_measure.py > {W}/pytest_gpu.log' ;;
    quality_gemlite) echo "python3 -m runner -m experiment=quality attention=eager 'quant=none,int4wo_gemlite,int8wo_gemlite' quant.group_size=64 convert.compile=false hydra.sweep.dir={W}/sweep" ;;
    gemv_fbgemm) echo 'python3 scripts/gpu/gemv_probe.py --formats bf16 int4-tinygemm int4-fbgemm --out {W}/gemv_fbgemm.json' ;;
    gemv_triton)
      echo 'python3 scripts/gpu/gemv_probe.py --formats bf16 int4-tinygemm int8-torchao int4-triton int8-triton --out {W}/gemv_triton.json'
      echo 'python3 scripts/gpu/gemv_probe.py --shapes 12288x4096 22016x4096 --formats bf16 int4-triton int8-triton --out {W}/gemv_triton_fused.json' ;;
    decode_triton) echo "python3 -m runner -m experiment=decode_limit 'quant=none,int4wo_triton,int8wo_triton' hydra.sweep.dir={W}/sweep" ;;
    host_loop)
      echo "python3 -m runner -m experiment=decode_limit 'quant=none,int4wo_triton' hydra.sweep.dir={W}/sweep"
      echo 'python3 scripts/decode_profile.py quant=int4wo_triton --defer-stop-check > {W}/profile_int4wo_triton.json' ;;
    bf16_kernels)
      echo 'python3 scripts/decode_profile.py quant=none --defer-stop-check > {W}/profile_bf16.json'
      echo "python3 -m runner -m experiment=decode_limit quant=none '+convert.compile_options.inductor={benchmark_fusion:true}' hydra.sweep.dir={W}/benchmark_fusion" ;;
    pytest_triton) echo 'python3 -m pytest -m gpu -v -rs -p no:cacheprovider tests/test_triton_quant.py > {W}/pytest_gpu.log' ;;
    batch_triton) echo "python3 -m runner -m experiment=decode_limit quant=int4wo_triton 'scenario.batch_size=${BATCHES:-4,16}' hydra.sweep.dir={W}/sweep" ;;
    quality_triton) echo "python3 -m runner -m experiment=quality attention=eager 'quant=none,int4wo_triton,int8wo_triton' quant.group_size=64 convert.compile=false hydra.sweep.dir={W}/sweep" ;;
    gemlite_hunt) echo 'python3 scripts/gpu/gemlite_shapes.py --shapes 576x576 192x576 1536x576 576x1536 --bits 8 --timeout 140 > {W}/gemlite_shapes.jsonl' ;;
    batch_gemlite) echo "python3 -m runner -m experiment=decode_limit quant=int4wo_gemlite 'scenario.batch_size=${BATCHES:-4,16,64}'${COMPILE_MODE:+ convert.compile_options.mode=$COMPILE_MODE} hydra.sweep.dir={W}/sweep" ;;
    decode_fused) echo "python3 -m runner -m experiment=decode_limit quant=none 'convert.fuse_projections=false,true' hydra.sweep.dir={W}/sweep" ;;
    attention_falcon) echo 'python3 -m runner -m experiment=attention_speedup_falcon timeout_s=150 resume=true hydra.sweep.dir={W}/sweep' ;;
    falcon_generate) echo 'python3 -m pytest -m gpu -q -rs -p no:cacheprovider tests/test_falcon_attention.py > {W}/pytest_falcon.log' ;;
  esac
}

expand() { local cmd=$1; echo "${cmd//\{W\}/$WORK/$2}"; }  # what runs: the same in --dry-run

pack() {  # one archive per study, no model files; OUT stays flat
  local study=$1 dir=$WORK/$1
  [ -d "$dir" ] || return 0
  tar czf "$OUT/$study.tgz" --exclude='*.safetensors' --exclude='*.bin' --exclude='*.onnx' --exclude='*.pt' \
    --exclude='*.gguf' --exclude='*.ckpt' -C "$WORK" "$study"
  local size; size=$(stat -c %s "$OUT/$study.tgz")
  [ "$size" -le $((16 * 1024 * 1024)) ] || echo "WARNING: $OUT/$study.tgz is $size bytes, over the 16 MiB that come back" | tee -a "$LOG"
}

if [ "$MODE" = dry ]; then
  for s in "${STUDIES[@]}"; do
    echo "== $s limit=${LIMIT[$s]}s folder=$WORK/$s archive=$OUT/$s.tgz"
    commands "$s" | while IFS= read -r cmd; do expand "$cmd" "$s"; done
  done
  exit 0
fi
if [ "$MODE" = pack ]; then
  for s in "${STUDIES[@]}"; do pack "$s"; done
  ls -la "$OUT"; exit 0
fi

{
  echo "h200_page.sh $(date -u +%FT%TZ) commit ${RUNNER_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  python3 -c "import torch, transformers as t; print('torch', torch.__version__, 'transformers', t.__version__)"
  python3 -c "import flash_attn.cute" 2>/dev/null && echo "flash-attn-4: installed" || echo "flash-attn-4: not installed"
} 2>&1 | tee -a "$LOG"
CACHE_IN=${CACHE_IN:-.inductor-cache/inductor.tgz}
if [ -f "$CACHE_IN" ]; then
  mkdir -p "$RUNNER_CACHE" && tar xzf "$CACHE_IN" -C "$RUNNER_CACHE" && echo "inductor cache: unpacked $CACHE_IN" | tee -a "$LOG"
fi
for s in "${STUDIES[@]}"; do
  dir=$WORK/$s; mkdir -p "$dir"
  if [ "$s" = combinations ] && ! python3 -c "import flash_attn.cute" 2>/dev/null; then
    echo "== $s: skipped, flash-attn-4 is not installed (its 5 other jobs are on the page already)" | tee -a "$LOG"
    continue
  fi
  start=$(date +%s); echo "== $s ($(date +%T), limit ${LIMIT[$s]} s)" | tee -a "$LOG"
  # one limit for the whole study: what is left of it goes to each command in turn
  while IFS= read -r cmd; do
    left=$((LIMIT[$s] - ($(date +%s) - start))); [ "$left" -gt 5 ] || { echo "   out of time before: $cmd" | tee -a "$LOG"; break; }
    echo "   \$ $(expand "$cmd" "$s")" | tee -a "$LOG"
    t0=$(date +%s)
    timeout -k 10 "$left" bash -c "$(expand "$cmd" "$s")" >>"$dir/console.log" 2>&1
    rc=$?
    echo "   rc=$rc, $(($(date +%s) - t0)) s$([ $rc -eq 124 ] && echo ', CUT AT THE LIMIT')" | tee -a "$LOG"
  done < <(commands "$s")
  # a sweep cut by its limit has no report yet: write it over the jobs that finished (every sweep of the study)
  for sweep in "$dir"/*/; do
    [ -f "$sweep/multirun.yaml" ] || continue
    [ -f "$sweep/summary.md" ] || python3 -m runner.report "$sweep" >>"$dir/console.log" 2>&1
    [ -f "$sweep/summary.md" ] && cut -c1-300 "$sweep/summary.md" | grep '^|' | tee -a "$LOG" >/dev/null
  done
  [ -f "$dir/overhead.json" ] && grep -E '"(overhead|sampler_effect|within_2_percent)"' "$dir/overhead.json" | tee -a "$LOG"
  [ -f "$dir/pytest_gpu.log" ] && tail -12 "$dir/pytest_gpu.log" | tee -a "$LOG" >/dev/null
  [ -f "$dir/pytest_falcon.log" ] && tail -4 "$dir/pytest_falcon.log" | tee -a "$LOG" >/dev/null
  for f in "$dir"/profile_*.json; do [ -s "$f" ] && grep -E '"(wall_ms|gpu_busy_ms|gpu_idle_ms)"' "$f" | tee -a "$LOG" >/dev/null; done
  for f in "$dir"/profile_*.log; do [ -f "$f" ] && grep -i -E "cudagraph|skipping" "$f" | sort | uniq -c | head -5 | tee -a "$LOG" >/dev/null; done
  [ -f "$dir/checks.txt" ] && tee -a "$LOG" <"$dir/checks.txt" >/dev/null
  echo "   $s: $(($(date +%s) - start)) s in all" | tee -a "$LOG"
  pack "$s"  # after every study: what finished comes back even if a later one runs out of time
done
if [ -d "$RUNNER_CACHE/inductor" ] && [ -z "${NO_CACHE_PACK:-}" ]; then  # for the next machine: see the header
  tar czf "$OUT/inductor.tgz" -C "$RUNNER_CACHE" inductor
  [ "$(stat -c %s "$OUT/inductor.tgz")" -le $((16 * 1024 * 1024)) ] || { echo "inductor cache over 16 MiB: not returned" | tee -a "$LOG"; rm -f "$OUT/inductor.tgz"; }
fi
ls -la "$OUT"
