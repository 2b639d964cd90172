// Crash-safe file replacement: write a temporary sibling, fsync, rename over the target, fsync the
// directory. rename(2) within one directory is atomic, so readers never see a half-written file.
#include "llm/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <string>

#include "llm/error.hpp"

namespace llm {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Unique per process, per call and per clock tick, so concurrent writers (threads, ranks sharing
// a file system) never collide; O_EXCL catches the rest.
std::filesystem::path unique_temp_sibling(const std::filesystem::path& path, int attempt) {
  static std::atomic<uint64_t> counter{0};
  const auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
  const std::string name = "." + path.filename().string() + ".tmp." + std::to_string(::getpid()) +
                           "." + std::to_string(counter++) + "." +
                           std::to_string(static_cast<uint64_t>(ticks) % 1000000007ULL) + "." +
                           std::to_string(attempt);
  return path.parent_path() / name;
}

}  // namespace

void fsync_directory(const std::filesystem::path& dir) {
  const std::string dir_name = dir.empty() ? std::string(".") : dir.string();
  const int fd = ::open(dir_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    throw UserError(dir_name + ": cannot open directory for fsync: " + errno_text(errno));
  }
  // Some file systems (e.g. certain network mounts) refuse fsync on directories: EINVAL is benign.
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL && err != EROFS) {
    throw UserError(dir_name + ": fsync of the directory failed: " + errno_text(err));
  }
}

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path) : path_(std::move(path)) {
  if (path_.filename().empty()) {
    throw UserError(path_.string() + ": expected a file path, got a directory path");
  }
  struct stat existing {};
  if (::stat(path_.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode)) {
    if (S_ISDIR(existing.st_mode)) {
      throw UserError(path_.string() + ": is a directory, expected a file path");
    }
    // A device, FIFO or socket: write into it, never rename over it.
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0)
      throw UserError(path_.string() + ": cannot open for writing: " + errno_text(errno));
    in_place_ = true;
    return;
  }
  std::error_code ec;
  const auto dir = path_.parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
    throw UserError(path_.string() + ": cannot write, directory '" + dir.string() +
                    "' does not exist");
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    temp_path_ = unique_temp_sibling(path_, attempt);
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    if (errno != EEXIST) {
      const int err = errno;
      temp_path_.clear();
      throw UserError(path_.string() + ": cannot create a file in '" +
                      (dir.empty() ? std::string(".") : dir.string()) + "': " + errno_text(err));
    }
  }
  temp_path_.clear();
  throw UserError(path_.string() + ": cannot find a free temporary file name");
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(std::string_view bytes) {
  if (fd_ < 0) throw UserError(path_.string() + ": write after commit");
  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    // Linux caps one write at ~2 GiB; larger tensors go in several calls.
    const size_t chunk = left < (size_t{1} << 30) ? left : (size_t{1} << 30);
    const ssize_t n = ::write(fd_, data, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw UserError(path_.string() + ": write failed: " + errno_text(errno));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw UserError(path_.string() + ": commit called twice");
  if (in_place_) {
    const int fd = fd_;
    fd_ = -1;
    // Devices and pipes refuse fsync (EINVAL, EROFS); anything else is a lost write.
    if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
      const int err = errno;
      ::close(fd);
      throw UserError(path_.string() + ": fsync failed: " + errno_text(err));
    }
    if (::close(fd) != 0) throw UserError(path_.string() + ": close failed: " + errno_text(errno));
    return;
  }
  if (::fsync(fd_) != 0) {
    throw UserError(path_.string() + ": fsync failed: " + errno_text(errno));
  }
  const int fd = fd_;
  fd_ = -1;
  // close() can report deferred write errors (NFS, quotas); treat them as failures.
  if (::close(fd) != 0) {
    throw UserError(path_.string() + ": close failed: " + errno_text(errno));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw UserError(path_.string() +
                    ": cannot rename the temporary file into place: " + errno_text(errno));
  }
  temp_path_.clear();  // it is the real file now; the destructor must not remove it
  fsync_directory(path_.parent_path());
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.write(bytes);
  writer.commit();
}

void copy_file_durable(const std::filesystem::path& from, const std::filesystem::path& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw UserError(from.string() + ": cannot open: " + errno_text(errno));
  AtomicFileWriter writer(to);
  std::string buffer(size_t{1} << 20, '\0');
  for (;;) {
    const ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(in);
      throw UserError(from.string() + ": read failed: " + errno_text(err));
    }
    if (n == 0) break;
    writer.write(std::string_view(buffer.data(), static_cast<size_t>(n)));
  }
  ::close(in);
  writer.commit();
}

std::filesystem::path temp_directory_for(const std::filesystem::path& target) {
  return target.parent_path() /
         ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()));
}

std::optional<long> temporary_owner(const std::string& filename) {
  static const std::regex directory(R"(\..+\.tmp-([0-9]{1,9})(\.old)?)");
  static const std::regex file(R"(\..+\.tmp\.([0-9]{1,9})\.[0-9]+\.[0-9]+\.[0-9]+)");
  std::smatch match;
  if (std::regex_match(filename, match, directory) || std::regex_match(filename, match, file)) {
    return std::stol(match[1].str());
  }
  return std::nullopt;
}

namespace {
// The name a temporary was made for: ".step-000002.tmp-41" -> "step-000002".
std::string temporary_target(const std::string& filename) {
  const auto dash = filename.rfind(".tmp-");
  const auto dot = filename.rfind(".tmp.");
  const auto cut = dash == std::string::npos  ? dot
                   : dot == std::string::npos ? dash
                                              : std::max(dash, dot);
  return cut == std::string::npos ? "" : filename.substr(1, cut - 1);
}

bool process_alive(long pid) {
  return pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}
}  // namespace

std::vector<std::filesystem::path> remove_dead_temporaries(const std::filesystem::path& dir,
                                                           const std::string& target_name) {
  namespace fs = std::filesystem;
  std::vector<fs::path> dead;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto owner = temporary_owner(name);
    if (!owner || process_alive(*owner)) continue;
    if (!target_name.empty() && temporary_target(name) != target_name) continue;
    dead.push_back(it->path());
  }
  std::vector<fs::path> removed;
  for (const auto& path : dead) {
    std::error_code remove_ec;
    fs::remove_all(path, remove_ec);
    if (!remove_ec) removed.push_back(path);
  }
  return removed;
}

void replace_directory(const std::filesystem::path& temp, const std::filesystem::path& target) {
  namespace fs = std::filesystem;
  fsync_directory(temp);
  const fs::path parent = target.parent_path();
  std::error_code ec;
  auto fail = [&](const std::string& what, int err) {
    throw UserError(target.string() + ": " + what + ": " + errno_text(err));
  };
  if (!fs::exists(target, ec)) {
    if (::rename(temp.c_str(), target.c_str()) != 0)
      fail("cannot rename the new directory into place", errno);
    fsync_directory(parent);
    return;
  }
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_directory(parent);   // `target` is the new directory from here on, even after a crash
    fs::remove_all(temp, ec);  // now holds the old one
    return;
  }
  if (errno != EINVAL && errno != ENOSYS) fail("cannot swap in the new directory", errno);
  // No RENAME_EXCHANGE here (rename cannot replace a non-empty directory): move the old one aside.
  fs::path old = temp;
  old += ".old";
  fs::remove_all(old, ec);
  if (::rename(target.c_str(), old.c_str()) != 0)
    fail("cannot move the old directory aside", errno);
  if (::rename(temp.c_str(), target.c_str()) != 0)
    fail("cannot rename the new directory into place", errno);
  fsync_directory(parent);
  fs::remove_all(old, ec);
}

}  // namespace llm
