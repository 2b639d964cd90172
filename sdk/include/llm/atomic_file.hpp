#pragma once
#include <filesystem>
#include <string>
#include <string_view>

#include "llm/export.hpp"

namespace llm {

// Writes a file under a temporary name in the same directory, fsyncs it, renames it over `path`
// and fsyncs the directory: readers see the old file or the new one, never half of one.
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

}  // namespace llm
