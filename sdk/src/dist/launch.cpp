#include "llm/dist/launch.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>

#include "llm/error.hpp"

namespace llm {
namespace {

int parse_int(const std::string& text, const std::string& name, int min, int max) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || value < min || value > max) {
    throw UserError(name + " must be an integer in [" + std::to_string(min) + ", " +
                    std::to_string(max) + "], got '" + text.substr(0, 40) + "'");
  }
  return static_cast<int>(value);
}

constexpr int kMaxWorld = 1 << 20;

std::optional<int> env_int(const EnvLookup& env, const std::string& name, int min, int max) {
  const auto value = env(name);
  if (!value) return std::nullopt;
  return parse_int(*value, name, min, max);
}

// Splits at commas outside brackets.
std::vector<std::string> split_top_level(const std::string& text, const std::string& whole) {
  std::vector<std::string> parts;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0 || depth > 1)
      throw UserError("SLURM_NODELIST: unbalanced brackets in '" + whole + "'");
    if (c == ',' && depth == 0) {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (depth != 0) throw UserError("SLURM_NODELIST: unbalanced brackets in '" + whole + "'");
  parts.push_back(current);
  return parts;
}

void expand_name(const std::string& name, const std::string& whole, size_t max_hosts,
                 std::vector<std::string>& out) {
  const auto open = name.find('[');
  if (open == std::string::npos) {
    if (name.empty()) throw UserError("SLURM_NODELIST: empty host name in '" + whole + "'");
    if (out.size() >= max_hosts) {
      throw UserError("SLURM_NODELIST: more than " + std::to_string(max_hosts) + " hosts");
    }
    out.push_back(name);
    return;
  }
  const auto close = name.find(']', open);
  const std::string prefix = name.substr(0, open);
  const std::string rest = name.substr(close + 1);
  const std::string ranges = name.substr(open + 1, close - open - 1);
  size_t start = 0;
  while (start <= ranges.size()) {
    const auto comma = std::min(ranges.find(',', start), ranges.size());
    const std::string range = ranges.substr(start, comma - start);
    const auto dash = range.find('-');
    const std::string low = range.substr(0, dash);
    const std::string high = dash == std::string::npos ? low : range.substr(dash + 1);
    auto digits = [&](const std::string& s) {
      if (s.empty() || s.size() > 9) return false;
      for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
      return true;
    };
    if (!digits(low) || !digits(high) || std::stol(high) < std::stol(low)) {
      throw UserError("SLURM_NODELIST: bad range '" + range + "' in '" + whole + "'");
    }
    for (long i = std::stol(low); i <= std::stol(high); ++i) {
      std::string number = std::to_string(i);
      if (number.size() < low.size()) number.insert(0, low.size() - number.size(), '0');
      expand_name(prefix + number + rest, whole, max_hosts, out);
    }
    start = comma + 1;
  }
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
}

std::vector<std::string> expand_slurm_nodelist(const std::string& nodelist, size_t max_hosts) {
  std::vector<std::string> hosts;
  for (const auto& part : split_top_level(nodelist, nodelist)) {
    expand_name(part, nodelist, max_hosts, hosts);
  }
  return hosts;
}

int port_from_slurm_job_id(const std::string& job_id) {
  const std::string digits = job_id.size() > 4 ? job_id.substr(job_id.size() - 4) : job_id;
  return 15000 + parse_int(digits, "SLURM_JOB_ID", 0, 9999);
}

LaunchInfo discover_launch(const EnvLookup& env, const LaunchOverrides& flags) {
  LaunchInfo info;
  const bool torchrun = env("RANK") && env("WORLD_SIZE");
  const auto slurm_tasks = env_int(env, "SLURM_NTASKS", 1, kMaxWorld);
  // One SLURM task (e.g. inside salloc) is a single process, as without SLURM.
  const bool slurm = !torchrun && slurm_tasks && *slurm_tasks > 1 && env("SLURM_PROCID");
  if (torchrun) {
    info.source = "torchrun";
    info.world_size = *env_int(env, "WORLD_SIZE", 1, kMaxWorld);
    info.rank = *env_int(env, "RANK", 0, kMaxWorld);
    info.local_rank = env_int(env, "LOCAL_RANK", 0, kMaxWorld).value_or(info.rank);
    info.node_rank = env_int(env, "GROUP_RANK", 0, kMaxWorld).value_or(0);
    info.num_nodes = env_int(env, "NNODES", 1, kMaxWorld).value_or(1);
    info.master_addr = env("MASTER_ADDR").value_or("127.0.0.1");
    info.master_port = env_int(env, "MASTER_PORT", 1, 65535).value_or(29500);
  } else if (slurm) {
    info.source = "slurm";
    info.world_size = *slurm_tasks;
    info.rank = *env_int(env, "SLURM_PROCID", 0, kMaxWorld);
    info.local_rank = env_int(env, "SLURM_LOCALID", 0, kMaxWorld).value_or(0);
    info.node_rank = env_int(env, "SLURM_NODEID", 0, kMaxWorld).value_or(0);
    info.num_nodes = env_int(env, "SLURM_NNODES", 1, kMaxWorld).value_or(1);
    info.gpus_on_node = env_int(env, "SLURM_GPUS_ON_NODE", 0, kMaxWorld).value_or(0);
    if (const auto addr = env("MASTER_ADDR")) {
      info.master_addr = *addr;
    } else if (const auto nodes = env("SLURM_NODELIST")) {
      info.master_addr = expand_slurm_nodelist(*nodes).front();
    }
    if (const auto port = env_int(env, "MASTER_PORT", 1, 65535)) {
      info.master_port = *port;
    } else if (const auto job = env("SLURM_JOB_ID")) {
      info.master_port = port_from_slurm_job_id(*job);
    }
  }
  info.distributed = torchrun || slurm;
  if (flags.rank || flags.world_size || flags.local_rank || flags.master_addr ||
      flags.master_port) {
    info.distributed = true;
    if (info.source == "single") info.source = "flags";
  }
  if (flags.world_size)
    info.world_size = parse_int(std::to_string(*flags.world_size), "--world_size", 1, kMaxWorld);
  if (flags.rank) info.rank = parse_int(std::to_string(*flags.rank), "--rank", 0, kMaxWorld);
  if (flags.local_rank) {
    info.local_rank = parse_int(std::to_string(*flags.local_rank), "--local_rank", 0, kMaxWorld);
  } else if (info.source == "flags") {
    info.local_rank = info.rank;
  }
  if (flags.master_addr) info.master_addr = *flags.master_addr;
  if (flags.master_port) {
    info.master_port = parse_int(std::to_string(*flags.master_port), "--master_port", 1, 65535);
  }
  if (info.rank >= info.world_size) {
    throw UserError("rank " + std::to_string(info.rank) + " is not below the world size " +
                    std::to_string(info.world_size) + " (" + info.source +
                    "); check --rank/--world_size or the launcher's variables");
  }
  if (info.master_addr.empty()) throw UserError("--master_addr must not be empty");
  return info;
}

}  // namespace llm
