#!/usr/bin/env bash
# Runs the seed table (scripts/seed_table.rhai) on one machine, one shard after another, and
# prints the merged table: the command behind RESULTS.md.
#
#   bash scripts/seed_table.sh movies        (then: bash scripts/seed_table.sh amazon)
#   bash scripts/seed_table.sh amazon 1 2    (only shards 1 and 2 of 3: one seed each)
#
# Each shard trains every recipe on one seed (8 cross-validations of 5 folds); its rows land in
# results/seed-table/<dataset>/results-<i>-of-3.jsonl as they finish, and a shard run again
# skips the rows it already has (a stopped shard continues). ROWS=7 in the environment runs
# the first 7 rows only (the article's; the 8th is ours). The fold models (about 150 MB per fold) are deleted once their cross-validation has scored them; what stays (the
# rows, each cross-validation's cv.json and oof.tsv, each fold's metrics.json) is what
# `tunelab merge results/seed-table/<dataset>` re-reads, and each fold's oof.json (its held-out
# and test predictions, for the bootstrap over test sentences). Two datasets side by side use
# both cores (each process runs one thread).
#
# The repeated k-fold measurement of RESULTS.md: two rows, three new fold assignments each,
#   SHARDS=3 OUT=results/repeated-cv/amazon REPEATS=3 ONLY='["baseline", "+ frequent eval"]' \
#     bash scripts/seed_table.sh amazon        (shards 0, 1, 2: one seed each)
#
# The seed table in the trained regime of RESULTS.md (200 steps a fold), with one more row: the
# best recipe with the Kaggle solutions' head (27 cross-validations, 3 a shard: job j is shard j mod 9):
#   SHARDS=9 EPOCHS=8 HEADS=true OUT=results/zoo/seed-table-amazon bash scripts/seed_table.sh amazon 0 1
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=${1:?usage: scripts/seed_table.sh movies|amazon [SHARD...]}
shift
n=${SHARDS:-3}
shards=("${@:-$(seq -s ' ' 0 $((n - 1)))}")
read -r -a shards <<< "${shards[*]}"
out=${OUT:-results/seed-table/$dataset}
extra=()
[ -n "${REPEATS:-}" ] && extra+=(--set "repeats=$REPEATS")
[ -n "${ONLY:-}" ] && extra+=(--set "only=$ONLY")
[ -n "${EPOCHS:-}" ] && extra+=(--set "epochs=$EPOCHS")
[ -n "${HEADS:-}" ] && extra+=(--set "heads=$HEADS")
bin=${TUNELAB:-target/release/tunelab}
[ -x "$bin" ] || cargo build --release
for i in "${shards[@]}"; do
  started=$(date +%s)
  "$bin" run scripts/seed_table.rhai --quiet --set "dataset=\"$dataset\"" --set "rows=${ROWS:-0}" --set "out=\"$out\"" "${extra[@]}" --shard "$i/$n"
  # Only cross-validations that are complete (cv.json written): another shard may be running.
  for cv in "$out"/*/; do
    if [ -f "$cv/cv.json" ]; then
      find "$cv" -path '*fold-*' \( -name best -o -name swa -o -name last -o -name log.jsonl \) -prune -exec rm -rf {} +
    fi
  done
  echo "seed-table $dataset shard $i/$n: $(( $(date +%s) - started )) s"
done
"$bin" merge "$out"
