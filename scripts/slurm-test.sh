#!/usr/bin/env bash
# llmhost on a real SLURM: starts a one-node cluster on this machine (scripts/slurm-cluster.sh:
# munged, slurmctld, slurmd, eight fake GPUs as gres), submits scripts/llm-run.sh with sbatch, and
# checks on the tiny model (CPU ranks over Gloo):
#   (a) a job of two tasks (two GPUs requested) ends with the adapter of a one-task job, byte for
#       byte;
#   (b) a two-task job signalled mid-run (`scancel --signal=USR1`, what --signal=USR1@90 sends
#       before the time limit) checkpoints, requeues itself, resumes with no flag added, and ends
#       with the adapter of the uninterrupted one-task job, byte for byte.
# Installs slurm-wlm and munge with apt-get when missing (root). Stops every daemon it started.
# Bounded: SLURM_TEST_TIMEOUT seconds (default 900) for the whole run. Exit 0 only if all pass.
#
#   scripts/slurm-test.sh            # after scripts/build.sh; BUILD_DIR=build by default
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
build_dir=${BUILD_DIR:-build}
[[ $build_dir = /* ]] || build_dir=$repo/$build_dir
llmhost=$build_dir/bin/llmhost
budget=${SLURM_TEST_TIMEOUT:-900}
deadline=$((SECONDS + budget))
started=$SECONDS

fail() {
  echo "slurm-test: FAIL: $*" >&2
  exit 1
}
[[ -x $llmhost ]] || fail "no $llmhost (build first: scripts/build.sh)"

source scripts/slurm-cluster.sh
work=$(mktemp -d /tmp/llmhost-slurm-test.XXXXXX)
chmod 755 "$work"
cleanup() {
  local rc=$?
  slurm_cluster_stop
  if [[ $rc -ne 0 && -z ${SLURM_TEST_KEEP:-} ]]; then
    for f in "$work"/*.out "$work"/cluster/log/slurmctld.log; do
      [[ -f $f ]] && { echo "---- $f (last 30 lines)"; tail -n 30 "$f"; }
    done
  fi
  [[ -n ${SLURM_TEST_KEEP:-} ]] && echo "slurm-test: kept $work" || rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 124' TERM INT

# Polls `$@` until it succeeds or the run's deadline passes.
wait_until() {
  local what=$1
  shift
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${budget}s waiting for $what"
    sleep 0.2
  done
}

slurm_cluster_install || fail "cannot install slurm-wlm and munge"
slurm_cluster_start "$work/cluster" || fail "the one-node cluster did not start (logs in $work/cluster/log)"
echo "slurm-test: cluster up ($(sinfo --version)), $((SECONDS - started)) s"

"$llmhost" --task prepare --plugin dolly --data_file "$repo/tests/data/datasets/dolly-sample.jsonl" \
  --checkpoint_dir "$repo/tests/data/tiny-pythia" --destination_dir "$work/data" \
  --max_seq_length 64 >"$work/prepare.log" 2>&1 || fail "prepare: $(tail -n 1 "$work/prepare.log")"

steps=${SLURM_TEST_STEPS:-100}
# Global batch 4: micro-batches of 2, one per rank with two ranks, lined up with the one-task run.
finetune=("$llmhost" --task finetune --plugin lora --device cpu
  --checkpoint_dir "$repo/tests/data/tiny-pythia" --data_dir "$work/data"
  --batch_size 4 --micro_batch_size 2 --max_steps "$steps" --warmup_steps 2 --learning_rate 0.01
  --lora_dropout 0.05 --eval_interval 0 --eval_iters 0 --save_interval 0 --log_interval 1
  --seed 17 --dist_timeout 120)
submit() {  # NAME GPUS: one task per GPU (scripts/llm-run.sh); prints the job id
  sbatch --parsable --chdir="$work" --output="$work/$1-%j.out" --job-name="$1" \
    --gpus-per-node="$2" --cpus-per-task=2 scripts/llm-run.sh "${finetune[@]}" --out_dir "$work/$1"
}
one=$(submit one 1)
two=$(submit two 2)
pre=$(submit preempted 2)
echo "slurm-test: submitted jobs one=$one two=$two preempted=$pre ($steps steps each)"

job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
log_shows() { grep -qF "$2" "$work/$1" 2>/dev/null; }

wait_until "job $pre to reach step 3" log_shows "preempted-$pre.out" "step 3/$steps"
scancel --signal=USR1 "$pre"
echo "slurm-test: sent SIGUSR1 to the steps of job $pre, $((SECONDS - started)) s"
requeued() {  # past the requeue's COMPLETING/REQUEUED states
  [[ $(job_field "$pre" Restarts) -ge 1 && $(job_field "$pre" JobState) =~ ^(PENDING|RUNNING|COMPLETED)$ ]]
}
wait_until "job $pre to be requeued" requeued
# SLURM holds a requeued job for about two minutes (BeginTime); the test lets it start sooner, but
# not in the second of the requeue: slurmd revoked the job's old credential at one-second
# resolution and kills a restart whose new credential bears the same second ("Job credential
# revoked").
if [[ $(job_field "$pre" JobState) == PENDING ]]; then scontrol update JobId="$pre" StartTime=now+2; fi
finished() {
  local j
  for j in "$one" "$two" "$pre"; do
    case $(job_field "$j" JobState) in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) ;; *) return 1 ;; esac
  done
}
wait_until "the jobs to finish" finished
elapsed=$((SECONDS - started))

results=()
failures=0
check() {  # DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then results+=("PASS  $what"); else results+=("FAIL  $what"); failures=$((failures + 1)); fi
}
state_is() { [[ $(job_field "$1" JobState) == "$2" ]]; }
adapter() { echo "$work/$1/final/adapter_model.safetensors"; }
stop_step=$(sed -n "s/.*stopped at step \([0-9]*\) of $steps (SIGUSR1).*/\1/p" "$work/preempted-$pre.out" | head -n 1)
stop_dir=$work/preempted/step-$(printf '%06d' "${stop_step:-0}")

check "one-task job $one completed" state_is "$one" COMPLETED
check "two-task job $two completed" state_is "$two" COMPLETED
check "two-task job ran 2 ranks over Gloo from SLURM's variables" \
  log_shows "two-$two.out" "data parallel, 2 rank(s) over gloo (slurm)"
check "(a) two tasks give the adapter of one task, byte for byte" cmp "$(adapter one)" "$(adapter two)"
check "(b) SIGUSR1 stopped job $pre mid-run (step ${stop_step:-?} of $steps)" \
  test -n "$stop_step" -a "${stop_step:-0}" -lt "$steps"
check "(b) the stop wrote the checkpoint ${stop_dir##*/}" test -f "$stop_dir/trainer_state.json"
check "(b) rank 0 requeued the job" log_shows "preempted-$pre.out" "requeued SLURM job $pre"
check "(b) SLURM restarted it (Restarts=1)" test "$(job_field "$pre" Restarts)" = 1
check "(b) the requeued run resumed by itself from step ${stop_step:-?}" \
  log_shows "preempted-$pre.out" "at step ${stop_step:-?}"
check "(b) job $pre completed after the requeue" state_is "$pre" COMPLETED
check "(b) the resumed job's adapter is the uninterrupted one, byte for byte" \
  cmp "$(adapter one)" "$(adapter preempted)"

echo "slurm-test: results (jobs done in ${elapsed} s; SLURM $(sinfo --version | cut -d' ' -f2))"
printf '  %s\n' "${results[@]}"
if ((failures > 0)); then
  echo "slurm-test: FAILED ($failures of ${#results[@]} checks)"
  exit 1
fi
echo "slurm-test: PASSED (${#results[@]} checks, $((SECONDS - started)) s)"
