#!/bin/bash
# call G (one H200): does the memory-efficient kernel also misread a single key/value head in a Llama (Transformers' own SDPA path, no conversion)?
set -u
R=$OUT/r; mkdir -p $R
python3 -c "import hydra, torchao" 2>/dev/null || bash .kitM/batch1/install.sh > $R/install.log 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
START=$(date +%s)
for k in sdpa_efficient sdpa_cudnn; do for len in 512 513; do for sc in forward generate; do
  n=${k}_${len}_${sc}
  timeout 60 python3 -m runner model=tiny-llama model.architecture.num_key_value_heads=1 hardware=cuda model.dtype=bfloat16 attention=$k scenario=$sc scenario.batch_size=2 scenario.sequence_length=$len scenario.padding_ratio=0.25 scenario.iterations=1 scenario.warmup_runs=0 model.architecture.hidden_size=512 model.architecture.num_attention_heads=8 hydra.run.dir=$R/${n}_$START > $R/$n.log 2>&1; echo "$n exit $?: $(grep -E 'vs reference|^error' $R/$n.log | head -2 | cut -c1-200)"
done; done; done
find $R -name "*.safetensors" -delete
tar czf $OUT/callG.tgz -C $OUT r && rm -rf $R
true
