#!/bin/bash
# call 26: autotuning pick or weight copies? (see p26.py)
set -u
START=$(date +%s); left() { echo $(( 560 - ($(date +%s) - START) )); }
bash .kitL/batch1/install.sh > $OUT/install.log 2>&1 || { tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for i in 1 2 3 4; do
  mode=cd; [ $i -gt 2 ] && mode=runner
  T=$(left); [ $T -gt 60 ] || { echo "stop before $i: $T s"; break; }
  TORCHINDUCTOR_CACHE_DIR=/tmp/ic26_$i timeout $(( T - 5 )) python3 .probe/p26.py $mode $i $OUT/p26_$i.json > $OUT/p26_$i.log 2>&1; echo "proc $i $mode exit $?"
  grep -v Warning $OUT/p26_$i.log | tail -12
done
true
