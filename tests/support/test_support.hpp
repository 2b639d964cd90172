#pragma once
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "llm/error.hpp"

namespace llm::test {

// tests/data in the source tree (fixtures copied from shared/fixtures).
std::filesystem::path data_dir();
std::filesystem::path source_dir();
// The build tree's plugin directory (the real plugins).
std::filesystem::path plugin_dir();
// tests/test_plugins/<case> in the build tree (loader test plugins).
std::filesystem::path test_plugin_dir(const std::string& test_case);

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Sets an environment variable (a kernel switch, an endpoint) for one scope, restoring it after.
class ScopedEnvironmentVariable {
 public:
  ScopedEnvironmentVariable(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    ::setenv(name, value, 1);
  }
  ~ScopedEnvironmentVariable() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnvironmentVariable(const ScopedEnvironmentVariable&) = delete;
  ScopedEnvironmentVariable& operator=(const ScopedEnvironmentVariable&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// The whole file as bytes ("" when it cannot be read).
std::string read_file_bytes(const std::filesystem::path& path);

// The message of the llm::UserError that fn() throws; records a test failure when it throws none.
template <typename Fn>
std::string user_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const llm::UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected llm::UserError";
  return "";
}

// Runs the real llmhost binary with `args` (no shell); captures stdout and stderr.
CommandResult run_llmhost(const std::vector<std::string>& args,
                          const std::vector<std::string>& extra_env = {});

}  // namespace llm::test
