#!/usr/bin/env bash
# Submits an ablation, cross-validation or sweep script to Slurm as a job array, one task per
# shard, then a merge job that starts when every task has succeeded. Prints the two job ids.
# (A sweep's tasks share its trials through their claims, whatever their number.)
#
#   scripts/slurm/submit.sh SHARDS RESULTS_DIR SCRIPT [tunelab run options...]
#   scripts/slurm/submit.sh 3 results/seed-table/movies scripts/seed_table.rhai --set 'dataset="movies"'
#
# RESULTS_DIR is the folder the script writes its results to (the ablation's or the sweep's `out`).
# Run it from the repository, after `cargo build --release`, on a filesystem every node sees.
set -euo pipefail
shards=${1:?usage: submit.sh SHARDS RESULTS_DIR SCRIPT [options...]}
results=${2:?usage: submit.sh SHARDS RESULTS_DIR SCRIPT [options...]}
script=${3:?usage: submit.sh SHARDS RESULTS_DIR SCRIPT [options...]}
shift 3
here=$(dirname "$0")
mkdir -p slurm-logs
array=$(sbatch --parsable --array="0-$((shards - 1))" "$here/shard.sbatch" "$script" "$shards" "$@")
# A failed shard makes the dependency impossible: the merge job is then cancelled, not left pending.
merge=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes "$here/merge.sbatch" "$results")
echo "$array $merge"
