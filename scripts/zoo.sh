#!/usr/bin/env bash
# Runs the trained-regime table (scripts/zoo.rhai) shard by shard and prints the merged table:
# the command behind RESULTS.md "Beyond the seed article".
#
#   bash scripts/zoo.sh             (all 9 shards, one after another: about 4.5 hours on 2 cores)
#   bash scripts/zoo.sh 0 4         (only shards 0 and 4 of 9)
#
# The 27 cross-validations (9 recipes x 3 seeds) are split into 9 shards of 3 (job j goes to
# shard j mod 9), each about half an hour with one thread, so a session can finish and commit
# whole shards. A shard's rows land in results/zoo/amazon/results-<i>-of-9.jsonl as its
# cross-validations finish; a shard run again skips the rows it has. Once a cross-validation
# is scored its fold models (about 150 MB a fold) are deleted; what stays is what
# `tunelab merge results/zoo/amazon --each-vs-first` reads (rows, cv.json, oof files, each fold's metrics.json
# and dev curve). Two shards side by side use both cores (each process runs one thread).
set -euo pipefail
cd "$(dirname "$0")/.."
n=9
shards=("${@:-$(seq -s ' ' 0 $((n - 1)))}")
read -r -a shards <<< "${shards[*]}"
out=${OUT:-results/zoo/amazon}
bin=${TUNELAB:-target/release/tunelab}
[ -x "$bin" ] || cargo build --release
for i in "${shards[@]}"; do
  started=$(date +%s)
  "$bin" run scripts/zoo.rhai --quiet --set "out=\"$out\"" --shard "$i/$n"
  for cv in "$out"/*/; do
    if [ -f "$cv/cv.json" ]; then
      find "$cv" -path '*fold-*' \( -name best -o -name swa -o -name last \) -prune -exec rm -rf {} +
    fi
  done
  echo "zoo shard $i/$n: $(( $(date +%s) - started )) s"
done
"$bin" merge "$out" --each-vs-first
