#!/bin/bash
# call 37: the PDL probe again with triton-pdl-glu (gate/up with SiLU * up in its epilogue), then bf16 decode_limit with coordinate descent truly
# off against on (30ef06a), each job in its own process with a cold cache
set -u
START=$(date +%s); left() { echo $(( 570 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/r/gpu.csv
timeout 330 python3 scripts/gpu/pdl_probe.py --out $OUT/r/pdl_probe.json > $OUT/r/pdl_probe.log 2>&1; echo "probe exit $?"
grep -v "^ \|^{\|^}" $OUT/r/pdl_probe.log | grep -v "Error\|error" | tail -20
grep -c "Error" $OUT/r/pdl_probe.log
for cd in false true; do
  T=$(left); echo "cd=$cd with $T s"; [ $T -lt 100 ] && break
  RUNNER_CACHE=/tmp/rc37$cd timeout $(( T - 5 )) python3 -m runner experiment=decode_limit quant=none convert.compile_options.coordinate_descent_tuning=$cd hydra.run.dir=/tmp/w37$cd < /dev/null > $OUT/r/cd_$cd.log 2>&1; echo "exit $?"
  mkdir -p $OUT/r/cd_$cd; cp /tmp/w37$cd/results.json $OUT/r/cd_$cd/ 2>/dev/null
  python3 .probe/trials_diff.py /tmp/w37$cd 2>&1 | head -3
done
T=$(left); echo "pytest with $T s"
[ $T -gt 80 ] && { timeout $(( T - 5 )) python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_compile_decode.py > $OUT/r/pytest_gpu.log 2>&1; echo "pytest exit $?"; tail -2 $OUT/r/pytest_gpu.log; }
tar czf $OUT/call37.tgz -C $OUT r && rm -rf $OUT/r
true
