#pragma once
// Preemption-safe runs under SLURM: after a warning signal (sbatch --signal=USR1@90) the trainer
// checkpoints and stops; the job is then requeued with `scontrol requeue` (as Lightning's
// SLURMEnvironment does) and the requeued run (SLURM_RESTART_COUNT > 0) resumes by itself.
#include <iosfwd>
#include <optional>
#include <string>

#include "llm/dist/launch.hpp"

namespace llmhost {

// SLURM_JOB_ID of the job this process runs in, if any.
std::optional<std::string> slurm_job_id(const llm::EnvLookup& env);

// True when SLURM started this job again (a requeue): SLURM_RESTART_COUNT > 0.
bool slurm_job_restarted(const llm::EnvLookup& env);

// Runs `scontrol requeue JOB`; "" on success, else why it failed (scontrol's own message goes to
// stderr).
std::string requeue_slurm_job(const std::string& job_id);

}  // namespace llmhost
