#!/usr/bin/env bash
# SLURM wrapper for llmhost (the tutorial's llm-run.sh, in our terms). One task per GPU; every
# task runs "$@" and llmhost reads its rank from SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID, the
# master from the first host of SLURM_NODELIST and the port from SLURM_JOB_ID (or MASTER_PORT).
#
#   salloc --gpus=1 scripts/llm-run.sh llmhost --task generate ...
#   sbatch --nodes=2 --gpus=2 scripts/llm-run.sh llmhost --plugin lora --task finetune ...
#
# LLMHOST_IMAGE=path.sif runs inside Apptainer (--nv, with LLMHOST_BINDS binds, default the
# current directory). GPUs per node come from the allocation (SLURM_GPUS_ON_NODE); the tasks of a
# node share the allocation's CPUs evenly.
#
# Preemption and time limits: SLURM sends SIGUSR1 90 s before the time limit (--signal below; it
# goes to the srun step's tasks; `scancel --signal=USR1 JOB`, and `--batch`/`--full` too, reach
# them the same way, since this script execs srun and srun forwards USR1). `llmhost --task
# finetune` finishes the optimizer step it is in, writes OUT/step-NNNNNN, exits with 75, and rank 0
# runs `scontrol requeue $SLURM_JOB_ID` (--slurm_requeue=false to leave the job ended). The
# requeued job (same id, SLURM_RESTART_COUNT=1, 2, ...) resumes from the newest checkpoint in
# --out_dir by itself (--resume defaults to auto). SIGTERM (scancel, preemption) and SIGINT also
# checkpoint and exit 75, without a requeue. Output is appended across restarts (--open-mode).
#SBATCH --job-name=llmhost
#SBATCH --nodes=1
#SBATCH --gpus-per-node=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=8
#SBATCH --mem-per-gpu=64G
#SBATCH --time=04:00:00
#SBATCH --output=llmhost-%j.out
#SBATCH --open-mode=append
#SBATCH --signal=USR1@90
#SBATCH --requeue
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 llmhost [--task T ...]" >&2
  exit 2
fi

# One task per GPU on every node (sbatch --gpus=N spreads N GPUs over the nodes).
nodes=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}
gpus_per_node=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-1}}
gpus_per_node=${gpus_per_node##*:}  # "gpu:2" -> 2
tasks_per_node=$((gpus_per_node > 0 ? gpus_per_node : 1))
cpus_on_node=${SLURM_CPUS_ON_NODE:-$((8 * tasks_per_node))}
cpus_per_task=$((cpus_on_node / tasks_per_node > 0 ? cpus_on_node / tasks_per_node : 1))

command=("$@")
if [[ -n "${LLMHOST_IMAGE:-}" ]]; then
  binds=${LLMHOST_BINDS:-$PWD}
  command=(apptainer exec --nv --bind "$binds" "$LLMHOST_IMAGE" "${command[@]}")
fi

export MASTER_PORT=${MASTER_PORT:-$((15000 + ${SLURM_JOB_ID:-0} % 10000))}
exec srun --nodes="$nodes" --ntasks-per-node="$tasks_per_node" --gpus-per-task=1 \
  --cpus-per-task="$cpus_per_task" --kill-on-bad-exit=1 "${command[@]}"
