#!/bin/bash
# call A (2x H200): issue 16 at HEAD: tp agreement fp32/bf16 (+ smollm2 refusal), then pytest -m gpu, first half, both GPUs visible
set -u
T0=$(date +%s)
R=$OUT/r; mkdir -p $R
bash .kitM/batch1/install.sh > $R/install.log 2>&1 || tail -5 $R/install.log
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 RUNNER_CACHE=/tmp/runner-cache
env | grep -E "NCCL_NVLS|MULTICAST|NVSHMEM" > $R/env.txt
nvidia-smi topo -m > $R/topo.txt 2>&1
nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm --format=csv > $R/gpus.txt 2>&1
python3 -c "import torch, transformers, torchao, bitsandbytes; print('torch', torch.__version__, 'transformers', transformers.__version__, 'torchao', torchao.__version__, 'bnb', bitsandbytes.__version__, 'gpus', torch.cuda.device_count())" > $R/versions.txt 2>&1
cat $R/gpus.txt $R/versions.txt $R/topo.txt $R/env.txt
OUT=$R PART=agree timeout 260 bash scripts/gpu/tp.sh > $R/tpa.log 2>&1; echo "tp.sh agree exit $? at $(( $(date +%s) - T0 )) s"
tail -14 $R/tpa.log | cut -c1-400
left=$(( 565 - ($(date +%s) - T0) ))
timeout $left python3 -m pytest -m gpu -q -p no:cacheprovider -rs --durations=25 tests/test_distributed.py tests/test_hardware.py tests/test_measure.py tests/test_compile_decode.py tests/test_sweep.py tests/test_roofline.py tests/test_quant.py > $R/pytest_a.log 2>&1; echo "pytest exit $? at $(( $(date +%s) - T0 )) s"
grep -E "passed|failed|PASSED|FAILED|SKIPPED|Error" $R/pytest_a.log | tail -25 | cut -c1-300
find $R -name "*.safetensors" -delete
tar czf $OUT/callA.tgz -C $OUT r && rm -rf $R
true
