#!/usr/bin/env bash
# The seed's studies (conf/experiment/), one sweep each, on one GPU: bash scripts/gpu/studies.sh STUDY[:OVERRIDES]...
#   e.g. bash scripts/gpu/studies.sh attention_speedup attention_speedup:model=falcon compile_decode
# Each sweep's report (summary.md, charts) lands in $OUT/<study>[-<model>]. Two names run a script instead:
# `overhead` (scripts/overhead.py, harness vs hand loop) and `decode_profile` (scripts/decode_profile.py, where a
# decode step's time goes), each writing $OUT/<tag>.json.
set -uo pipefail; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
for spec in "$@"; do
  study=${spec%%:*}; extra=""; [ "$spec" != "$study" ] && extra=${spec#*:}
  tag=$study${extra:+-$(echo "$extra" | tr ' =/' '_-_')}
  echo "=== $tag ($(date +%T))"
  if [ "$study" = overhead ] || [ "$study" = decode_profile ]; then
    python3 "scripts/$study.py" $extra | tee "$OUT/$tag.json"
    continue
  fi
  python3 -m runner -m experiment="$study" $extra hydra.sweep.dir="$OUT/$tag" 2>&1 \
    | grep -E "^(sweep report|error|\[.*(ERROR|WARNING))" | grep -v "Loading weights" | tail -15
  [ -f "$OUT/$tag/summary.md" ] && cat "$OUT/$tag/summary.md" | cut -c1-400
done
