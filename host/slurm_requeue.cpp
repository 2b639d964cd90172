#include "slurm_requeue.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <vector>

extern char** environ;

namespace llmhost {

std::optional<std::string> slurm_job_id(const llm::EnvLookup& env) { return env("SLURM_JOB_ID"); }

bool slurm_job_restarted(const llm::EnvLookup& env) {
  const auto count = env("SLURM_RESTART_COUNT");
  return count && count->find_first_not_of("0123456789") == std::string::npos &&
         count->find_first_not_of('0') != std::string::npos;
}

std::string requeue_slurm_job(const std::string& job_id) {
  std::vector<std::string> storage{"scontrol", "requeue", job_id};
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int rc = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ); rc != 0) {
    return std::string("cannot run scontrol: ") + std::strerror(rc);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return std::string("waiting for scontrol: ") + std::strerror(errno);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return WIFEXITED(status) ? "scontrol exited with status " + std::to_string(WEXITSTATUS(status))
                           : "scontrol was killed by signal " + std::to_string(WTERMSIG(status));
}

}  // namespace llmhost
