#include "output_path.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>

#include "llm/atomic_file.hpp"
#include "llm/error.hpp"

namespace llmhost {

namespace fs = std::filesystem;

namespace {

// Absolute, symlinks of the existing part resolved, no trailing separator.
fs::path resolved(const fs::path& path) {
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec) absolute = path;
  fs::path canonical = fs::weakly_canonical(absolute, ec);
  if (ec) canonical = absolute.lexically_normal();
  while (canonical.filename().empty() && canonical != canonical.root_path()) {
    canonical = canonical.parent_path();
  }
  return canonical;
}

// `inner` is `outer` or lies below it (component by component, so /a/bc is not below /a/b).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

std::string quoted(const FlagPath& given) {
  return "--" + given.flag + " '" + given.path.string() + "'";
}

void require_not_empty(const FlagPath& given, const char* expected) {
  if (given.path.empty())
    throw llm::UserError("--" + given.flag + " is empty: expected " + expected);
}

// The directory must exist (or be creatable when `create`) and be writable by this process.
void require_writable_directory(const FlagPath& given, const fs::path& dir, bool create) {
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  const bool missing = status.type() == fs::file_type::not_found;
  if (ec && !missing) {
    throw_path_error(given, "cannot use '" + dir.string() + "': " + ec.message());
  }
  if (missing && create) {
    fs::create_directories(dir, ec);
    if (ec) throw_path_error(given, "cannot create '" + dir.string() + "': " + ec.message());
  } else if (missing) {
    throw_path_error(given, "directory '" + dir.string() + "' does not exist");
  } else if (!fs::is_directory(status)) {
    throw_path_error(given, "'" + dir.string() + "' is not a directory");
  }
  // EROFS for a read-only mount even for root; EACCES for a directory we may not write.
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    throw_path_error(given, "cannot write in '" + dir.string() + "': " + std::strerror(errno));
  }
}

}  // namespace

void throw_path_error(const FlagPath& given, const std::string& what) {
  throw llm::UserError(quoted(given) + ": " + what);
}

void refuse_aliasing(const FlagPath& output, const std::vector<FlagPath>& inputs,
                     bool replaced_whole) {
  if (output.path.empty()) return;  // reported where the output is claimed
  const fs::path out = resolved(output.path);
  for (const auto& input : inputs) {
    if (input.path.empty()) continue;
    const fs::path in = resolved(input.path);
    std::error_code ec;
    const bool same = in == out || fs::equivalent(in, out, ec);
    if (same) {
      throw_path_error(output,
                       "is also " + quoted(input) + ": writing the output would destroy the input");
    }
    if (is_within(out, in)) {
      throw_path_error(
          output, "lies inside " + quoted(input) + ": writing the output would change the input");
    }
    if (replaced_whole && is_within(in, out)) {
      throw_path_error(output, "holds " + quoted(input) +
                                   ": replacing the output directory would delete the input");
    }
  }
}

void check_output_file(const FlagPath& output) {
  require_not_empty(output, "a file path");
  struct stat existing {};
  if (::stat(output.path.c_str(), &existing) == 0) {
    if (S_ISDIR(existing.st_mode)) throw_path_error(output, "is a directory, expected a file path");
    if (!S_ISREG(existing.st_mode)) {
      // A device or FIFO is written in place (AtomicFileWriter); it must open for writing.
      const int fd = ::open(output.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) throw_path_error(output, std::string("cannot write: ") + std::strerror(errno));
      ::close(fd);
      return;
    }
  } else if (errno != ENOENT) {
    throw_path_error(output, std::string("cannot use it: ") + std::strerror(errno));
  }
  if (output.path.filename().empty()) throw_path_error(output, "is a directory path, not a file");
  const fs::path parent = output.path.parent_path();
  require_writable_directory(output, parent.empty() ? fs::path(".") : parent, /*create=*/false);
}

void check_output_directory(const FlagPath& output) {
  require_not_empty(output, "a directory path");
  fs::path existing = resolved(output.path);
  std::error_code ec;
  while (fs::status(existing, ec).type() == fs::file_type::not_found &&
         existing != existing.root_path()) {
    existing = existing.parent_path();
  }
  require_writable_directory(output, existing, /*create=*/false);
}

void create_output_parent(const FlagPath& output) {
  require_not_empty(output, "a directory path");
  const fs::path target = resolved(output.path);
  require_writable_directory(output, target.parent_path(), /*create=*/true);
  std::error_code ec;
  const auto status = fs::status(target, ec);
  if (!ec && fs::exists(status) && !fs::is_directory(status)) {
    throw_path_error(output, "exists and is not a directory");
  }
}

OutputDirectoryLock::OutputDirectoryLock(const FlagPath& output, std::ostream& log) {
  require_not_empty(output, "a directory path");
  require_writable_directory(output, output.path, /*create=*/true);
  const fs::path lock_file = output.path / kLockFile;
  fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw_path_error(output, "cannot create '" + lock_file.string() + "': " + std::strerror(errno));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      char holder[32] = {};
      const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
      std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      ::close(fd_);
      fd_ = -1;
      throw_path_error(output, "is in use by another llmhost run" +
                                   (pid.empty() ? std::string() : " (pid " + pid + ")") +
                                   "; wait for it to end or choose another --" + output.flag);
    }
    // Some network file systems have no locks: run, but say that nothing guards the directory.
    log << "llmhost: warning: " << quoted(output) << ": cannot lock it (" << std::strerror(err)
        << "); nothing stops a second run from writing into it\n";
  } else {
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      // Only the message of a refused second run names the pid; the lock itself holds.
    }
  }
  report_removed_leftovers(llm::remove_dead_temporaries(output.path), log);
}

OutputDirectoryLock::~OutputDirectoryLock() {
  if (fd_ >= 0) ::close(fd_);
}

void report_removed_leftovers(const std::vector<fs::path>& removed, std::ostream& log) {
  for (const auto& path : removed) {
    log << "llmhost: removed " << path.string()
        << ", a temporary left by a run that ended before finishing it\n";
  }
}

}  // namespace llmhost
