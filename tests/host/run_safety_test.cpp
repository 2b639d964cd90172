// What a run does to the places it writes, beyond single bad values (bad_run_test.cpp): read-only
// places, damaged plugin files, special files, stdout that cannot be written, two runs on one
// output directory, and the temporaries a killed or failed run leaves.
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "elf_check.hpp"
#include "llm/json_file.hpp"
#include "plugin_registry.hpp"
#include "support/bad_run_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;
using llm::test::run_llmhost;
using llm::test::TempDir;
using namespace llm::test::bad_run;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- 1. A read-only or permission-denied place -------------------------------------------------

// As a user, a directory without write permission; as root (who may write anywhere), a read-only
// bind mount of it in the child's own mount namespace.
llm::test::CommandResult run_with_unwritable(const fs::path& dir,
                                             const std::vector<std::string>& args) {
  if (::geteuid() != 0) {
    fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
    auto result = run_llmhost(args);
    fs::permissions(dir, fs::perms::owner_all);
    return result;
  }
  ChildLimits limits;
  limits.read_only = dir;
  return run_llmhost_limited(args, limits);
}

TEST(UnwritablePlace, OutputDirectoryInAReadOnlyPlaceIsExitTwoNamingFlagPathAndReason) {
  TempDir work;
  const fs::path place = work.path() / "place";
  fs::create_directories(place);
  for (const auto& args :
       {finetune_args(place / "run"),
        std::vector<std::string>{"--task", "merge", "--checkpoint_dir",
                                 (data_dir() / "tiny-pythia").string(), "--lora_path",
                                 (data_dir() / "golden/tiny-pythia-lora-adapter").string(),
                                 "--out_dir", (place / "merged").string()}}) {
    const auto result = run_with_unwritable(place, args);
    if (result.exit_code == kLimitsUnavailable) {
      GTEST_SKIP() << "running as root without the privilege to mount a read-only place";
    }
    EXPECT_EQ(result.exit_code, 2) << result.err;
    expect_one_error_line(result.err);
    EXPECT_TRUE(contains(result.err, "--out_dir '" + place.string())) << result.err;
    EXPECT_TRUE(contains(result.err, "Read-only file system") ||
                contains(result.err, "Permission denied"))
        << result.err;
    EXPECT_TRUE(fs::is_empty(place));
  }
}

// ---- 2. Damaged plugin files -------------------------------------------------------------------

fs::path good_plugin() { return llm::test::test_plugin_dir("good") / "libllm_good.so"; }

// A copy of the good test plugin cut to `size` bytes, in its own directory.
fs::path truncated_plugin(const fs::path& dir, uintmax_t size) {
  fs::create_directories(dir);
  const fs::path copy = dir / "libllm_damaged.so";
  fs::copy_file(good_plugin(), copy);
  fs::resize_file(copy, size);
  return copy;
}

TEST(DamagedPlugin, TruncatedLibrariesAreRefusedWithTheReasonAndNeverMapped) {
  const auto full = fs::file_size(good_plugin());
  for (const uintmax_t size : {uintmax_t{0}, uintmax_t{10}, uintmax_t{100}, full / 2, full - 1}) {
    SCOPED_TRACE("cut to " + std::to_string(size) + " of " + std::to_string(full) + " bytes");
    TempDir work;
    const auto plugin = truncated_plugin(work.path() / "plugins", size);
    const std::string problem = llmhost::elf_library_problem(plugin);
    EXPECT_FALSE(problem.empty());
    // --task list shows it as refused, with the reason; the process survives.
    const auto list = run_llmhost(
        {"--task", "list", "--format", "json", "--plugin_dir", plugin.parent_path().string()});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const auto refused = llm::Json::parse(list.out)["refused"];
    ASSERT_EQ(refused.size(), 1u) << list.out;
    EXPECT_EQ(refused[0]["path"], plugin.string());
    EXPECT_EQ(refused[0]["reason"], problem);
  }
}

TEST(DamagedPlugin, ATaskThatDoesNotNeedItRunsWithAWarning) {
  TempDir work;
  const auto plugin =
      truncated_plugin(work.path() / "plugins", fs::file_size(good_plugin()) * 3 / 4);
  const auto result =
      run_llmhost({"--task", "tokenize", "--checkpoint_dir", (data_dir() / "tiny-pythia").string(),
                   "--text", "Hello", "--plugin_dir", plugin.parent_path().string()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(contains(result.err, plugin.string() + " refused: is truncated or damaged"))
      << result.err;
}

TEST(DamagedPlugin, ASegmentCutShortIsFoundEvenWithoutSectionHeaders) {
  TempDir work;
  const fs::path copy = work.path() / "libllm_cut.so";
  fs::copy_file(good_plugin(), copy);
  Elf64_Ehdr header{};
  {
    std::fstream file(copy, std::ios::in | std::ios::out | std::ios::binary);
    file.read(reinterpret_cast<char*>(&header), sizeof(header));
    // Drop the section table (a stripped or hand-made library has none) so only segments count.
    header.e_shoff = 0;
    header.e_shnum = 0;
    file.seekp(0);
    file.write(reinterpret_cast<const char*>(&header), sizeof(header));
  }
  EXPECT_EQ(llmhost::elf_library_problem(copy), "");
  fs::resize_file(copy, fs::file_size(copy) / 2);
  EXPECT_TRUE(contains(llmhost::elf_library_problem(copy), "segment"))
      << llmhost::elf_library_problem(copy);
}

TEST(DamagedPlugin, NonLibrariesAreRefusedByName) {
  TempDir work;
  write_text(work.path() / "libllm_text.so", "#!/bin/sh\necho not a library\n");
  EXPECT_EQ(llmhost::elf_library_problem(work.path() / "libllm_text.so"),
            "is not an ELF shared library (no ELF magic number)");
  ASSERT_EQ(::mkfifo((work.path() / "libllm_fifo.so").c_str(), 0600), 0);
  EXPECT_EQ(llmhost::elf_library_problem(work.path() / "libllm_fifo.so"), "is not a regular file");
  EXPECT_EQ(llmhost::elf_library_problem(good_plugin()), "");
}

TEST(UnreadablePluginDirectory, IsAWarningNotSilence) {
  TempDir work;
  fs::create_directory_symlink(work.path() / "loop", work.path() / "loop");
  const auto result =
      run_llmhost({"--task", "list"}, {"LLMHOST_PLUGIN_PATH=" + (work.path() / "loop").string()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(contains(result.err, "warning: plugin " + (work.path() / "loop").string() +
                                       " directory cannot be read (Too many levels"))
      << result.err;
}

TEST(UnreadablePluginDirectory, PermissionDeniedIsAWarning) {
  TempDir work;
  const fs::path dir = work.path() / "private";
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all);
  // Root reads any directory: the check runs in a child that gave up root.
  EXPECT_EXIT(
      {
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) std::_Exit(3);
        llmhost::PluginRegistry registry;
        registry.load_directories({dir});
        const bool warned = registry.warnings().size() == 1 &&
                            contains(registry.warnings()[0].reason, "Permission denied");
        std::_Exit(warned ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---- 3. Special files and stdout ---------------------------------------------------------------

// A character device like /dev/null (1, 3) or /dev/full (1, 7), made in `dir` where possible so
// that a broken build cannot replace the system's; the real one for users who cannot mknod.
fs::path char_device(const fs::path& dir, const char* name, unsigned minor) {
  const fs::path path = dir / name;
  if (::mknod(path.c_str(), S_IFCHR | 0666, makedev(1, minor)) == 0) return path;
  EXPECT_NE(::geteuid(), 0u) << "root could not mknod " << path;
  return fs::path("/dev") / name;
}

std::vector<std::string> evaluate_args(const std::vector<std::string>& more) {
  std::vector<std::string> args = {"--task",           "evaluate",
                                   "--checkpoint_dir", (data_dir() / "tiny-pythia").string(),
                                   "--eval_tasks",     "arithmetic_1dc",
                                   "--data_dir",       (data_dir() / "eval-data").string(),
                                   "--limit",          "2",
                                   "--max_length",     "64"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(SpecialFiles, SaveFilepathOnANullDeviceIsWrittenInPlaceNotReplaced) {
  TempDir work;
  const auto device = char_device(work.path(), "null", 3);
  const auto result = run_llmhost(evaluate_args({"--save_filepath", device.string()}));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  struct stat after {};
  ASSERT_EQ(::stat(device.c_str(), &after), 0);
  EXPECT_TRUE(S_ISCHR(after.st_mode)) << device << " was replaced";
  expect_no_temporaries(device.parent_path() == "/dev" ? work.path() : device.parent_path());
}

TEST(SpecialFiles, SaveFilepathOnAFullDeviceIsAnErrorAndTheDeviceStays) {
  TempDir work;
  const auto device = char_device(work.path(), "full", 7);
  const auto result = run_llmhost(evaluate_args({"--save_filepath", device.string()}));
  EXPECT_EQ(result.exit_code, 2) << result.err;
  expect_error_as_last_line(result.err);
  EXPECT_TRUE(contains(result.err, device.string() + ": write failed: No space left on device"))
      << result.err;
  struct stat after {};
  ASSERT_EQ(::stat(device.c_str(), &after), 0);
  EXPECT_TRUE(S_ISCHR(after.st_mode));
}

TEST(SpecialFiles, ResultsLostOnAFullStdoutAreAnError) {
  ChildLimits limits;
  limits.stdout_target = "/dev/full";
  for (const auto& args : {std::vector<std::string>{"--task", "list"},
                           std::vector<std::string>{"--help"}, evaluate_args({})}) {
    const auto result = run_llmhost_limited(args, limits);
    EXPECT_EQ(result.exit_code, 2) << args[0] << "\n" << result.err;
    EXPECT_TRUE(contains(result.err,
                         "llmhost: error: cannot write the results to standard "
                         "output: No space left on device"))
        << result.err;
  }
}

TEST(NonFiniteMetrics, AnUndefinedStandardErrorIsNullInTheResultsJson) {
  TempDir work;
  const auto file = work.path() / "results.json";
  auto args = evaluate_args({"--save_filepath", file.string()});
  *std::find(args.begin(), args.end(), "2") = "1";  // one document: no standard error
  const auto result = run_llmhost(args);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string text = llm::test::read_file_bytes(file);
  EXPECT_FALSE(contains(text, "NaN")) << text;
  const auto results = llm::Json::parse(text);  // strict JSON: NaN would not parse
  EXPECT_TRUE(results["results"]["arithmetic_1dc"]["acc_stderr"].is_null()) << text;
  EXPECT_TRUE(results["results"]["arithmetic_1dc"]["acc"].is_number()) << text;
}

// ---- 5. Two runs on one output directory -------------------------------------------------------

TEST(OutputLock, ASecondRunOnTheSameOutDirIsRefusedUntilTheFirstDies) {
  TempDir work;
  const fs::path out = work.path() / "run";
  fs::create_directories(out);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  // The first "run": a process holding the lock the way llmhost does, then killed with -9.
  const pid_t holder = ::fork();
  if (holder == 0) {
    const int fd = ::open((out / ".llmhost.lock").c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::write(fd, pid.data(), pid.size()) < 0 || ::write(ready[1], "x", 1) != 1) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);

  const auto refused = run_llmhost(finetune_args(out));
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  expect_one_error_line(refused.err);
  EXPECT_TRUE(contains(refused.err, "--out_dir '" + out.string() +
                                        "': is in use by another llmhost run (pid " +
                                        std::to_string(holder) + ")"))
      << refused.err;
  EXPECT_FALSE(fs::exists(out / "final"));
  EXPECT_FALSE(fs::exists(out / "metrics.csv"));

  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  const auto after = run_llmhost(finetune_args(out));
  EXPECT_EQ(after.exit_code, 0) << "the kernel releases a dead run's lock\n" << after.err;
  EXPECT_TRUE(fs::exists(out / "final" / "adapter_model.safetensors"));
}

TEST(OutputLock, TwoRealRunsOnOneOutDirNeverBothWriteIt) {
  TempDir work;
  const fs::path out = work.path() / "run";
  const auto args = finetune_args(out, {"--max_steps", "6"});
  // Both start together: the one that takes the lock second is refused, unless it starts after
  // the first has finished (then each is a whole run, one after the other).
  const pid_t first = spawn_llmhost(args, work.path() / "out1", work.path() / "err1");
  const pid_t second = spawn_llmhost(args, work.path() / "out2", work.path() / "err2");
  const int codes[2] = {wait_for_exit_code(first), wait_for_exit_code(second)};
  const std::string errs[2] = {llm::test::read_file_bytes(work.path() / "err1"),
                               llm::test::read_file_bytes(work.path() / "err2")};
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(codes[i] == 0 || codes[i] == 2) << errs[i];
    if (codes[i] == 2) {
      EXPECT_TRUE(contains(errs[i], "is in use by another llmhost run")) << errs[i];
    }
  }
  EXPECT_TRUE(codes[0] == 0 || codes[1] == 0) << errs[0] << errs[1];
  // metrics.csv holds one header and one row per step of one run: nothing interleaved.
  std::ifstream csv(out / "metrics.csv");
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 1 + 6);
}

// ---- 6. Temporaries left by runs that died ------------------------------------------------------

TEST(Leftovers, TheNextRunRemovesTheTemporariesOfDeadRunsAndKeepsLiveOnes) {
  TempDir work;
  const fs::path out = work.path() / "run";
  const auto dead = std::to_string(dead_pid());
  const auto live = std::to_string(::getpid());
  fs::create_directories(out / (".step-000002.tmp-" + dead));
  write_text(out / (".step-000002.tmp-" + dead) / "adapter_model.safetensors", "half");
  fs::create_directories(out / (".final.tmp-" + dead + ".old"));
  write_text(out / (".metrics.csv.tmp." + dead + ".0.12345.0"), "half");
  fs::create_directories(out / (".step-000001.tmp-" + live));
  write_text(out / "notes.tmp-1", "a user's file that only looks temporary");

  const auto result = run_llmhost(finetune_args(out));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_FALSE(fs::exists(out / (".step-000002.tmp-" + dead)));
  EXPECT_FALSE(fs::exists(out / (".final.tmp-" + dead + ".old")));
  EXPECT_FALSE(fs::exists(out / (".metrics.csv.tmp." + dead + ".0.12345.0")));
  EXPECT_TRUE(fs::exists(out / (".step-000001.tmp-" + live))) << "its owner is alive";
  EXPECT_TRUE(fs::exists(out / "notes.tmp-1"));
  EXPECT_TRUE(
      contains(result.err, "llmhost: removed " + (out / (".step-000002.tmp-" + dead)).string()))
      << result.err;
}

TEST(Leftovers, MergeRemovesItsOwnDeadTemporaryAndNoOtherName) {
  TempDir work;
  const auto dead = std::to_string(dead_pid());
  const fs::path half = work.path() / (".merged.tmp-" + dead);
  const fs::path unrelated = work.path() / (".other.tmp-" + dead);
  fs::create_directories(half);
  write_text(half / "model.safetensors", "half a model");
  fs::create_directories(unrelated);
  const auto result =
      run_llmhost({"--task", "merge", "--checkpoint_dir", (data_dir() / "tiny-pythia").string(),
                   "--lora_path", (data_dir() / "golden/tiny-pythia-lora-adapter").string(),
                   "--out_dir", (work.path() / "merged").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_FALSE(fs::exists(half));
  EXPECT_TRUE(fs::exists(unrelated)) << "another output's temporary is not merge's to remove";
  EXPECT_TRUE(fs::exists(work.path() / "merged" / "model.safetensors"));
}

TEST(Leftovers, ACheckpointThatCannotBeWrittenLeavesNoTemporary) {
  TempDir work;
  const fs::path out = work.path() / "run";
  ChildLimits limits;
  limits.max_file_size = 4096;  // metrics rows fit; an adapter or optimizer state does not
  const auto result = run_llmhost_limited(finetune_args(out), limits);
  EXPECT_EQ(result.exit_code, 2) << result.err;
  expect_error_as_last_line(result.err);
  EXPECT_TRUE(contains(result.err, "File too large")) << result.err;
  EXPECT_TRUE(fs::exists(out / "metrics.csv")) << "the run got as far as its first checkpoint";
  EXPECT_FALSE(fs::exists(out / "step-000001"));
  expect_no_temporaries(work.path());
}

}  // namespace
