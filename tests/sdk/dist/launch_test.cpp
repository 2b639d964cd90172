// Rank discovery from SLURM, torchrun and flags (llm/dist/launch.hpp), with hand-set variables.
#include "llm/dist/launch.hpp"

#include <gtest/gtest.h>

#include <map>

#include "llm/error.hpp"

namespace {

llm::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(SlurmNodelist, ExpandsBracketRangesKeepingZeroPadding) {
  const auto hosts = llm::expand_slurm_nodelist("node[001-003,7],gpu5");
  EXPECT_EQ(hosts, (std::vector<std::string>{"node001", "node002", "node003", "node7", "gpu5"}));
}

TEST(SlurmNodelist, ExpandsSeveralBracketGroupsAsAProduct) {
  const auto hosts = llm::expand_slurm_nodelist("r[1-2]-n[08-09]");
  EXPECT_EQ(hosts, (std::vector<std::string>{"r1-n08", "r1-n09", "r2-n08", "r2-n09"}));
}

TEST(SlurmNodelist, RejectsMalformedAndOversizedLists) {
  EXPECT_THROW(llm::expand_slurm_nodelist("node[1-"), llm::UserError);
  EXPECT_THROW(llm::expand_slurm_nodelist("node[5-2]"), llm::UserError);
  EXPECT_THROW(llm::expand_slurm_nodelist("a,,b"), llm::UserError);
  EXPECT_THROW(llm::expand_slurm_nodelist("n[0-999999999]", 1000), llm::UserError);
}

TEST(LaunchDiscovery, NoVariablesMeansASingleProcess) {
  const auto info = llm::discover_launch(env_of({}));
  EXPECT_FALSE(info.distributed);
  EXPECT_EQ(info.world_size, 1);
  EXPECT_EQ(info.rank, 0);
}

TEST(LaunchDiscovery, SlurmGivesRanksMasterFromNodelistAndPortFromJobId) {
  const auto info = llm::discover_launch(env_of({{"SLURM_NTASKS", "4"},
                                                 {"SLURM_PROCID", "3"},
                                                 {"SLURM_LOCALID", "1"},
                                                 {"SLURM_NODEID", "1"},
                                                 {"SLURM_NNODES", "2"},
                                                 {"SLURM_GPUS_ON_NODE", "2"},
                                                 {"SLURM_NODELIST", "gpu[017-018]"},
                                                 {"SLURM_JOB_ID", "4851234"}}));
  EXPECT_TRUE(info.distributed);
  EXPECT_EQ(info.source, "slurm");
  EXPECT_EQ(info.world_size, 4);
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.node_rank, 1);
  EXPECT_EQ(info.num_nodes, 2);
  EXPECT_EQ(info.gpus_on_node, 2);
  EXPECT_EQ(info.master_addr, "gpu017");
  EXPECT_EQ(info.master_port, 15000 + 1234);
}

TEST(LaunchDiscovery, SlurmMasterPortVariableWinsOverTheJobId) {
  const auto info = llm::discover_launch(env_of({{"SLURM_NTASKS", "2"},
                                                 {"SLURM_PROCID", "0"},
                                                 {"SLURM_NODELIST", "n1"},
                                                 {"SLURM_JOB_ID", "99"},
                                                 {"MASTER_PORT", "23456"}}));
  EXPECT_EQ(info.master_port, 23456);
  EXPECT_EQ(llm::port_from_slurm_job_id("99"), 15099);
}

TEST(LaunchDiscovery, OneSlurmTaskRunsAsASingleProcess) {
  const auto info = llm::discover_launch(env_of({{"SLURM_NTASKS", "1"}, {"SLURM_PROCID", "0"}}));
  EXPECT_FALSE(info.distributed);
}

TEST(LaunchDiscovery, TorchrunVariablesWinOverSlurm) {
  const auto info = llm::discover_launch(env_of({{"SLURM_NTASKS", "8"},
                                                 {"SLURM_PROCID", "5"},
                                                 {"RANK", "1"},
                                                 {"WORLD_SIZE", "2"},
                                                 {"LOCAL_RANK", "1"},
                                                 {"MASTER_ADDR", "10.0.0.1"},
                                                 {"MASTER_PORT", "29400"}}));
  EXPECT_EQ(info.source, "torchrun");
  EXPECT_EQ(info.world_size, 2);
  EXPECT_EQ(info.rank, 1);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.master_addr, "10.0.0.1");
  EXPECT_EQ(info.master_port, 29400);
}

TEST(LaunchDiscovery, FlagsOverrideTheEnvironment) {
  llm::LaunchOverrides flags;
  flags.rank = 0;
  flags.master_port = 31000;
  flags.master_addr = "127.0.0.1";
  const auto info = llm::discover_launch(
      env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}), flags);
  EXPECT_EQ(info.rank, 0);
  EXPECT_EQ(info.world_size, 2);
  EXPECT_EQ(info.master_addr, "127.0.0.1");
  EXPECT_EQ(info.master_port, 31000);
}

TEST(LaunchDiscovery, FlagsAloneStartAProcessGroupEvenOfOne) {
  llm::LaunchOverrides flags;
  flags.world_size = 1;
  const auto info = llm::discover_launch(env_of({}), flags);
  EXPECT_TRUE(info.distributed);
  EXPECT_EQ(info.source, "flags");
}

TEST(LaunchDiscovery, BadValuesNameTheVariable) {
  try {
    llm::discover_launch(env_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}));
    FAIL() << "no error";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("RANK"), std::string::npos) << e.what();
  }
  EXPECT_THROW(llm::discover_launch(env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}})), llm::UserError);
  EXPECT_THROW(
      llm::discover_launch(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}})),
      llm::UserError);
}

}  // namespace
