#!/usr/bin/env bash
# A real Slurm on this one machine: installs Debian's slurm-wlm and munge (if missing), starts
# munged, slurmctld and slurmd with a single-node configuration, submits a small seed table
# (scripts/seed_table.rhai on 96 Amazon sentences, 2 folds, 2 seeds: 16 cross-validations) as a
# 4-task job array plus a dependent merge job, waits, prints the merged table, then runs the same
# table unsharded in this shell and checks that both tables are the same. Then the same for a small
# hyper-parameter sweep (scripts/sweep.rhai's grid on 96 sentences: 18 trials shared by a 2-task
# array through their claims), checking that the Slurm leaderboard equals the one run in this
# shell. About 8 minutes on 2 cores.
#
#   make slurm-demo          (= bash scripts/slurm/demo.sh; needs root for apt and the daemons)
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf 'slurm-demo: %s\n' "$*"; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
[ -x target/release/tunelab ] || cargo build --release

state=$PWD/.cache/slurm
mkdir -p "$state/ctld" "$state/d" "$state/log"
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > "$state/slurm.conf" <<CONF
ClusterName=tunelab
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$state/slurm.conf

# munge: the key the package made, a daemon running as root here.
pgrep -x munged >/dev/null || { mkdir -p /run/munge; munged --force; }
# Restart the demo's own daemons (found by their pid files), never another cluster's.
for pid in "$state/slurmctld.pid" "$state/slurmd.pid"; do
  if [ -f "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
done
sleep 1
slurmctld
slurmd
for _ in $(seq 30); do sinfo -h -o '%T' 2>/dev/null | grep -q idle && break; sleep 1; done
say "cluster up: $(sinfo -h -o '%P %D nodes %c CPUs %T')"

options=(--set 'dataset="amazon"' --set train_limit=96 --set test_limit=50 --set folds=2 --set 'seeds=[1, 2]')
sharded=.cache/slurm/sharded
whole=.cache/slurm/whole
rm -rf "$sharded" "$whole"
read -r array merge < <(scripts/slurm/submit.sh 4 "$sharded" scripts/seed_table.rhai "${options[@]}" --set "out=\"$sharded\"")
[ -n "$array" ] && [ -n "$merge" ] || { say "submitting failed"; exit 1; }
say "submitted array job $array (4 tasks) and merge job $merge (afterok)"
while squeue -h -j "$array,$merge" 2>/dev/null | grep -q .; do sleep 5; done
log=slurm-logs/tunelab-merge-$merge.out
[ -f "$log" ] || { say "the merge job left no log ($log): see $state/log"; exit 1; }
say "merged by Slurm:"
cat "$log"
grep -q 'summary.csv and ablation.png written' "$log" || { say "the merge job failed"; exit 1; }

say "the same table, unsharded, in this shell"
target/release/tunelab run scripts/seed_table.rhai --quiet "${options[@]}" --set "out=\"$whole\"" >/dev/null
table() { target/release/tunelab merge "$1" | grep -v 'written to'; }
if diff <(table "$sharded") <(table "$whole"); then
  say "the Slurm table equals the unsharded one"
else
  say "the tables differ"; exit 1
fi

say "a small sweep (18 grid trials) as a 2-task array sharing one folder"
sweep_options=(--set 'mode="grid"' --set train_limit=96 --set epochs=1)
sharded=.cache/slurm/sweep-sharded
whole=.cache/slurm/sweep-whole
rm -rf "$sharded" "$whole"
read -r array merge < <(scripts/slurm/submit.sh 2 "$sharded" scripts/sweep.rhai "${sweep_options[@]}" --set "out=\"$sharded\"")
[ -n "$array" ] && [ -n "$merge" ] || { say "submitting the sweep failed"; exit 1; }
say "submitted array job $array (2 tasks) and merge job $merge (afterok)"
while squeue -h -j "$array,$merge" 2>/dev/null | grep -q .; do sleep 5; done
log=slurm-logs/tunelab-merge-$merge.out
[ -f "$log" ] || { say "the merge job left no log ($log): see $state/log"; exit 1; }
say "merged by Slurm:"
cat "$log"
grep -q '18 of 18 trials finished' "$log" || { say "the sweep's merge job did not find 18 finished trials"; exit 1; }
workers=$(grep -ho '"worker": *"[^"]*"' "$sharded"/trial-*.json | sed 's/.*shard \([0-9/]*\)".*/task \1/' | sort | uniq -c)
say "trials per array task: $(echo $workers)"
say "the same sweep in this shell"
target/release/tunelab run scripts/sweep.rhai --quiet "${sweep_options[@]}" --set "out=\"$whole\"" >/dev/null
board() { target/release/tunelab merge "$1" | grep -v 'written to'; }
if diff <(board "$sharded") <(board "$whole"); then
  say "the Slurm leaderboard equals the one run in this shell"
else
  say "the leaderboards differ"; exit 1
fi
