#!/bin/bash
# call 38: the bf16 decode step with the probe's Triton kernel for every one-row Linear (.probe/p38.py), fused
# projections, with and without PDL, against the runner's default (inductor's kernels); each job in its own process
# with a cold cache, on one machine
set -u
START=$(date +%s); left() { echo $(( 575 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p $OUT/r
job() {  # name, then the command
  local name=$1; shift
  T=$(left); echo "$name with $T s"; [ $T -lt 90 ] && return
  RUNNER_CACHE=/tmp/rc38${name}_$START timeout $(( T - 5 )) "$@" hydra.run.dir=/tmp/w38${name}_$START < /dev/null > $OUT/r/$name.log 2>&1; echo "exit $?"
  mkdir -p $OUT/r/$name; cp /tmp/w38${name}_$START/results.json $OUT/r/$name/ 2>/dev/null
  python3 .probe/trials_diff.py /tmp/w38${name}_$START 2>&1 | head -1 | cut -c1-200
  grep "probe bf16_gemv" $OUT/r/$name.log
}
job tritonpdl env PROBE_PDL=1 python3 .probe/p38.py experiment=decode_limit quant=none convert.fuse_projections=true isolate=false
job default python3 -m runner experiment=decode_limit quant=none
job tritonpdl_indpdl env PROBE_PDL=1 python3 .probe/p38.py experiment=decode_limit quant=none convert.fuse_projections=true isolate=false '+convert.compile_options.inductor={triton.enable_pdl:true}'
job triton env PROBE_PDL=0 python3 .probe/p38.py experiment=decode_limit quant=none convert.fuse_projections=true isolate=false
tar czf $OUT/call38.tgz -C $OUT r && rm -rf $OUT/r
true
