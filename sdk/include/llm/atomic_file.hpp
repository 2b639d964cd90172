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

}  // namespace llm
