#include "llm/atomic_file.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iterator>

#include "llm/error.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::TempDir;

using llm::test::user_error_of;

size_t entries_in(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(AtomicFile, WritesNewFileAndLeavesNoTemporary) {
  TempDir dir;
  const auto path = dir.path() / "out.json";
  llm::write_file_atomic(path, "{\"a\": 1}\n");
  EXPECT_EQ(llm::test::read_file_bytes(path), "{\"a\": 1}\n");
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, ReplacesExistingFile) {
  TempDir dir;
  const auto path = dir.path() / "out.txt";
  llm::write_file_atomic(path, "old");
  llm::write_file_atomic(path, "new content");
  EXPECT_EQ(llm::test::read_file_bytes(path), "new content");
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, TemporaryIsASiblingUntilCommit) {
  TempDir dir;
  const auto path = dir.path() / "out.txt";
  llm::AtomicFileWriter writer(path);
  writer.write("part 1, ");
  writer.write("part 2");
  EXPECT_EQ(writer.temp_path().parent_path(), dir.path());
  EXPECT_TRUE(fs::exists(writer.temp_path()));
  EXPECT_FALSE(fs::exists(path));
  writer.commit();
  EXPECT_EQ(llm::test::read_file_bytes(path), "part 1, part 2");
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, AbandonedWriterKeepsOldContentAndRemovesTemporary) {
  TempDir dir;
  const auto path = dir.path() / "adapter.safetensors";
  llm::write_file_atomic(path, "old content");
  {
    llm::AtomicFileWriter writer(path);
    writer.write("half of the new con");
    // No commit: as if an exception unwound the writer mid-write.
  }
  EXPECT_EQ(llm::test::read_file_bytes(path), "old content");
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, MissingDirectoryIsAUserErrorNamingThePath) {
  const auto message =
      user_error_of([] { llm::write_file_atomic("/nonexistent-dir/sub/out.txt", "x"); });
  EXPECT_NE(message.find("/nonexistent-dir/sub/out.txt"), std::string::npos) << message;
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
}

// A full disk seen from write(2): the file-size limit makes writes fail with EFBIG.
TEST(AtomicFile, FailedWriteIsAUserErrorAndOldContentSurvives) {
  TempDir dir;
  const auto path = dir.path() / "model.safetensors";
  llm::write_file_atomic(path, "old content");

  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  {
    const std::string big(64 * 1024, 'x');
    message = user_error_of([&] { llm::write_file_atomic(path, big); });
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  EXPECT_EQ(llm::test::read_file_bytes(path), "old content");
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, CommitTwiceIsAnError) {
  TempDir dir;
  llm::AtomicFileWriter writer(dir.path() / "a.txt");
  writer.commit();
  EXPECT_THROW(writer.commit(), llm::UserError);
  EXPECT_THROW(writer.write("late"), llm::UserError);
}

TEST(AtomicFile, CopyFileDurableCopiesEveryByteAndLeavesNoTemporary) {
  TempDir dir;
  fs::create_directories(dir.path() / "from");
  fs::create_directories(dir.path() / "to");
  std::string bytes(3 * 1024 * 1024 + 17, '\0');  // several read buffers, binary content
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  llm::write_file_atomic(dir.path() / "from/tokenizer.json", bytes);
  llm::copy_file_durable(dir.path() / "from/tokenizer.json", dir.path() / "to/tokenizer.json");
  EXPECT_EQ(llm::test::read_file_bytes(dir.path() / "to/tokenizer.json"), bytes);
  EXPECT_EQ(entries_in(dir.path() / "to"), 1u);
}

TEST(AtomicFile, CopyFileDurableFromAMissingFileIsAUserErrorNamingIt) {
  TempDir dir;
  const auto missing = dir.path() / "missing.json";
  const auto message =
      user_error_of([&] { llm::copy_file_durable(missing, dir.path() / "copy.json"); });
  EXPECT_NE(message.find(missing.string()), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir.path() / "copy.json"));
}

TEST(AtomicFile, ReplaceDirectoryInstallsTheNewDirectoryWhenNoneExists) {
  TempDir dir;
  fs::create_directories(dir.path() / ".final.tmp");
  llm::write_file_atomic(dir.path() / ".final.tmp/state.json", "new");
  llm::replace_directory(dir.path() / ".final.tmp", dir.path() / "final");
  EXPECT_EQ(llm::test::read_file_bytes(dir.path() / "final/state.json"), "new");
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, ReplaceDirectorySwapsInTheNewContentAndRemovesTheOldCopy) {
  TempDir dir;
  fs::create_directories(dir.path() / "final");
  llm::write_file_atomic(dir.path() / "final/state.json", "old");
  llm::write_file_atomic(dir.path() / "final/only-in-old.txt", "old");
  fs::create_directories(dir.path() / ".final.tmp");
  llm::write_file_atomic(dir.path() / ".final.tmp/state.json", "new");
  llm::replace_directory(dir.path() / ".final.tmp", dir.path() / "final");
  EXPECT_EQ(llm::test::read_file_bytes(dir.path() / "final/state.json"), "new");
  EXPECT_FALSE(fs::exists(dir.path() / "final/only-in-old.txt"));
  EXPECT_EQ(entries_in(dir.path()), 1u);  // neither the temporary nor the old copy is left
}

TEST(AtomicFile, FsyncDirectoryOfAMissingDirectoryIsAUserErrorNamingIt) {
  const auto message = user_error_of([] { llm::fsync_directory("/nonexistent-dir/sub"); });
  EXPECT_NE(message.find("/nonexistent-dir/sub"), std::string::npos) << message;
}

TEST(AtomicFile, TemporaryNamesCarryTheirOwnersPid) {
  const auto temp = llm::temp_directory_for("/out/step-000002");
  EXPECT_EQ(temp, fs::path("/out/.step-000002.tmp-" + std::to_string(::getpid())));
  EXPECT_EQ(llm::temporary_owner(temp.filename().string()), ::getpid());
  EXPECT_EQ(llm::temporary_owner(".merged.tmp-41.old"), 41);
  EXPECT_EQ(llm::temporary_owner(".metrics.csv.tmp.77.3.123456.0"), 77);
  for (const char* not_ours : {"step-000002", "merged.tmp-41", ".x.tmp-", ".x.tmp-4a",
                               ".x.tmp.77.3", "notes.tmp.1.2.3.4", ".llmhost.lock"}) {
    EXPECT_FALSE(llm::temporary_owner(not_ours)) << not_ours;
  }
}

// A pid that was just reaped: no process has it.
pid_t reaped_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(AtomicFile, RemoveDeadTemporariesRemovesOnlyThoseOfGoneOwners) {
  TempDir dir;
  const auto dead = std::to_string(reaped_pid());
  const auto mine = std::to_string(::getpid());
  fs::create_directories(dir.path() / (".a.tmp-" + dead) / "inner");
  fs::create_directories(dir.path() / (".a.tmp-" + mine));
  fs::create_directories(dir.path() / (".b.tmp-" + dead));
  std::ofstream(dir.path() / (".c.json.tmp." + dead + ".0.1.0")) << "half";
  std::ofstream(dir.path() / "result.json") << "kept";

  const auto only_a = llm::remove_dead_temporaries(dir.path(), "a");
  ASSERT_EQ(only_a.size(), 1u);
  EXPECT_EQ(only_a[0], dir.path() / (".a.tmp-" + dead));
  EXPECT_TRUE(fs::exists(dir.path() / (".b.tmp-" + dead)));

  const auto rest = llm::remove_dead_temporaries(dir.path());
  EXPECT_EQ(rest.size(), 2u);
  EXPECT_TRUE(fs::exists(dir.path() / (".a.tmp-" + mine))) << "a live owner keeps its temporary";
  EXPECT_TRUE(fs::exists(dir.path() / "result.json"));
  EXPECT_EQ(entries_in(dir.path()), 2u);
}

TEST(AtomicFile, ADeviceIsWrittenInPlaceAndItsWriteErrorsAreUserErrors) {
  TempDir dir;
  const auto null_device = dir.path() / "null";
  const auto full_device = dir.path() / "full";
  if (::mknod(null_device.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0 ||
      ::mknod(full_device.c_str(), S_IFCHR | 0666, makedev(1, 7)) != 0) {
    ASSERT_NE(::geteuid(), 0u) << "root could not mknod";
    GTEST_SKIP() << "making device nodes needs root; tests/host/run_safety_test.cpp covers "
                    "/dev/null for users";
  }
  llm::write_file_atomic(null_device, "results\n");
  struct stat after {};
  ASSERT_EQ(::stat(null_device.c_str(), &after), 0);
  EXPECT_TRUE(S_ISCHR(after.st_mode)) << "the device was replaced by a regular file";
  const auto message = user_error_of([&] { llm::write_file_atomic(full_device, "results\n"); });
  EXPECT_NE(message.find("full: write failed: No space left on device"), std::string::npos)
      << message;
  EXPECT_EQ(entries_in(dir.path()), 2u) << "no temporary beside the devices";
}

TEST(AtomicFile, ADirectoryIsNotAFilePath) {
  TempDir dir;
  const auto message = user_error_of([&] { llm::write_file_atomic(dir.path(), "x"); });
  EXPECT_NE(message.find("is a directory"), std::string::npos) << message;
}

}  // namespace
