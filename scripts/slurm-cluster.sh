#!/usr/bin/env bash
# A throwaway one-node SLURM cluster on this machine, for scripts/slurm-test.sh (sourced, not run):
# munged, slurmctld and slurmd as root, every file under $SLURM_TEST_DIR, non-default ports, four
# fake GPUs (character devices like /dev/null) declared as gres so GPU requests are accepted. No
# cgroups (proctrack/linuxproc, task/none): it runs in containers and on CI runners.
#
#   slurm_cluster_install     apt-get install slurm-wlm munge when missing (needs root)
#   slurm_cluster_start DIR   writes the config under DIR, starts the daemons, waits for the node
#   slurm_cluster_stop        stops what slurm_cluster_start started (safe to call twice)

slurm_cluster_install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v munged >/dev/null && command -v sbatch >/dev/null; then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "slurm-test: slurm-wlm and munge are not installed and this is not root" >&2
    return 1
  fi
  echo "slurm-test: installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

slurm_cluster_pids=()

slurm_cluster_start() {
  local dir=$1
  mkdir -p "$dir"/{state,spool,log,dev}
  chmod 755 "$dir"
  export SLURM_TEST_DIR=$dir
  # Our own munge key and socket: the system's munged (if any) is left alone.
  dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge.key"
  munged --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" ||
    return 1
  slurm_cluster_pids+=("$(cat "$dir/munged.pid")")

  local gpus=8 i
  for ((i = 0; i < gpus; ++i)); do
    mknod "$dir/dev/gpu$i" c 1 3 2>/dev/null || : >"$dir/dev/gpu$i"
  done
  cat >"$dir/gres.conf" <<GRES
AutoDetect=off
NodeName=localhost Name=gpu File=$dir/dev/gpu[0-$((gpus - 1))]
GRES
  # config_overrides: the node has the CPUs and memory written here, not what the machine has (the
  # wrapper asks for 8 CPUs per GPU).
  cat >"$dir/slurm.conf" <<CONF
ClusterName=llmhost-test
SlurmctldHost=localhost
SlurmctldPort=${SLURM_TEST_CTLD_PORT:-16817}
SlurmdPort=${SLURM_TEST_SLURMD_PORT:-16818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
SchedulerParameters=sched_interval=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs=32 Sockets=1 CoresPerSocket=32 ThreadsPerCore=1 RealMemory=512000 Gres=gpu:$gpus State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -i -f "$SLURM_CONF" || return 1
  slurm_cluster_wait_for_pid "$dir/slurmctld.pid" || return 1
  slurmd -N localhost -f "$SLURM_CONF" || return 1
  slurm_cluster_wait_for_pid "$dir/slurmd.pid" || return 1
  local deadline=$((SECONDS + 60))
  until sinfo -h -N -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; do
    if ((SECONDS > deadline)); then
      echo "slurm-test: the node never became idle: $(sinfo -N 2>&1 | tail -n 1)" >&2
      return 1
    fi
    sleep 0.5
  done
}

slurm_cluster_wait_for_pid() {
  local file=$1 deadline=$((SECONDS + 30))
  until [[ -s $file ]]; do
    if ((SECONDS > deadline)); then
      echo "slurm-test: no $file after 30 s" >&2
      return 1
    fi
    sleep 0.2
  done
  slurm_cluster_pids+=("$(cat "$file")")
}

slurm_cluster_stop() {
  local dir=${SLURM_TEST_DIR:-}
  [[ -n $dir ]] || return 0
  # Jobs first, while slurmctld and slurmd can still end their steps.
  scancel --full --quiet --partition=test 2>/dev/null || true
  local pid i deadline=$((SECONDS + 20))
  while [[ -n $(squeue -h -o %i 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.2; done
  for ((i = ${#slurm_cluster_pids[@]} - 1; i >= 0; --i)); do
    kill "${slurm_cluster_pids[i]}" 2>/dev/null || true
  done
  for pid in "${slurm_cluster_pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  # Anything a job of this cluster left (slurmstepd, tasks): its environment names our slurm.conf.
  for pid in $(pgrep -x slurmstepd 2>/dev/null) $(pgrep -x llmhost 2>/dev/null); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_CONF=$dir/slurm.conf"; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  slurm_cluster_pids=()
  SLURM_TEST_DIR=
}
