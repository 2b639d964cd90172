#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm/export.hpp"

namespace llm {

// Writes a file under a temporary name in the same directory, fsyncs it, renames it over `path`
// and fsyncs the directory: readers see the old file or the new one, never half of one.
// A `path` that is a device, FIFO or socket (/dev/null, /dev/stdout) is written in place: renaming
// over it would replace the special file with a regular one. Its write errors are errors too.
class LLM_API AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path path);
  ~AtomicFileWriter();  // removes the temporary file unless commit() ran
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::string_view bytes);
  void commit();
  const std::filesystem::path& temp_path() const { return temp_path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
  bool in_place_ = false;
};

LLM_API void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Makes the entries of `dir` (files created, renamed or removed in it) durable. File systems that
// refuse fsync on directories (EINVAL, EROFS) are accepted; other failures are UserErrors.
LLM_API void fsync_directory(const std::filesystem::path& dir);

// Copies `from` to `to` through AtomicFileWriter: fsynced, renamed into place, directory fsynced.
LLM_API void copy_file_durable(const std::filesystem::path& from, const std::filesystem::path& to);

// Puts the complete directory `temp` (a sibling of `target`, every file in it already durable) in
// place of `target`: fsyncs `temp`, swaps the two atomically (renameat2 RENAME_EXCHANGE; where
// the file system lacks it, moves the old directory aside first), fsyncs the parent directory so
// the new name survives a crash, then removes the old copy. A crash leaves `target` complete
// (old or new) except, on the fallback path, between the two renames.
LLM_API void replace_directory(const std::filesystem::path& temp,
                               const std::filesystem::path& target);

// Temporaries carry the id of the process that made them: ".<name>.tmp-<pid>" for directories
// (and ".<name>.tmp-<pid>.old" for the old copy replace_directory moves aside),
// ".<name>.tmp.<pid>.*" for AtomicFileWriter's files. A killed process leaves them behind; they are
// never results.
LLM_API std::filesystem::path temp_directory_for(const std::filesystem::path& target);
// The owner's pid when `filename` is one of the temporary names above.
LLM_API std::optional<long> temporary_owner(const std::string& filename);
// Removes the temporaries in `dir` whose owner process is gone (only those made for `target_name`
// when it is not empty); returns what it removed. Errors are ignored: this is housekeeping.
LLM_API std::vector<std::filesystem::path> remove_dead_temporaries(
    const std::filesystem::path& dir, const std::string& target_name = "");

}  // namespace llm
