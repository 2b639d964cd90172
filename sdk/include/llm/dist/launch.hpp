#pragma once
// Who this process is in a data-parallel run: read from explicit flags, torchrun-style variables
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or SLURM's (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, SLURM_NODEID, SLURM_NNODES, SLURM_GPUS_ON_NODE, SLURM_NODELIST, SLURM_JOB_ID),
// in that order of precedence. None of them: a single process, no process group.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "llm/export.hpp"

namespace llm {

struct LaunchInfo {
  bool distributed = false;       // false: run as a single process without a process group
  std::string source = "single";  // "single" | "flags" | "torchrun" | "slurm"
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int node_rank = 0;
  int num_nodes = 1;
  int gpus_on_node = 0;  // SLURM_GPUS_ON_NODE when given
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Values given on the command line (--rank, --world_size, ...); each overrides the environment.
struct LaunchOverrides {
  std::optional<int> rank;
  std::optional<int> world_size;
  std::optional<int> local_rank;
  std::optional<std::string> master_addr;
  std::optional<int> master_port;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (getenv).
LLM_API EnvLookup process_environment();

// UserError naming the variable or flag when a value is malformed or out of range.
LLM_API LaunchInfo discover_launch(const EnvLookup& env, const LaunchOverrides& flags = {});

// "node[001-003,7],gpu5" -> node001 node002 node003 node7 gpu5 (SLURM's hostlist syntax;
// several bracket groups per name expand as a product). UserError for a malformed list or one
// that expands past max_hosts.
LLM_API std::vector<std::string> expand_slurm_nodelist(const std::string& nodelist,
                                                       size_t max_hosts = 65536);

// Lightning's choice when MASTER_PORT is unset: 15000 + the last four digits of SLURM_JOB_ID.
LLM_API int port_from_slurm_job_id(const std::string& job_id);

}  // namespace llm
