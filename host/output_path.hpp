#pragma once
// The paths a task writes, checked before any work: every OS error on a path the user gave
// becomes a UserError naming the flag, the path and the reason (exit 2), an output never aliases an
// input, and an output directory is held by one run at a time.
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace llmhost {

// A path as the user gave it, with the flag that gave it ("out_dir", without dashes).
struct FlagPath {
  std::string flag;
  std::filesystem::path path;
};

// "--flag 'path': what" as a UserError.
[[noreturn]] void throw_path_error(const FlagPath& given, const std::string& what);

// Refuses an output that is an input or lies inside one (writing it would change the input). With
// `replaced_whole` (the output directory is swapped in as a whole, as merge does) an output that
// holds an input is refused too: the swap would delete it.
void refuse_aliasing(const FlagPath& output, const std::vector<FlagPath>& inputs,
                     bool replaced_whole = false);

// The file an output goes to (e.g. --save_filepath): not empty, not a directory, in a directory
// that exists and can be written. A device or FIFO (/dev/null) is accepted: it is written in place.
void check_output_file(const FlagPath& output);

// Before any work: an output directory that does not exist yet must be creatable (its nearest
// existing ancestor a writable directory); one that exists must be a writable directory. Creates
// nothing, so a run refused later leaves nothing behind.
void check_output_directory(const FlagPath& output);

// Creates the parent directory of an output that is written under a temporary name beside it and
// renamed into place (merge's --out_dir).
void create_output_parent(const FlagPath& output);

// The output directory of a run, held until this object dies or the process ends: created if
// absent, writable, locked exclusively (flock on <dir>/.llmhost.lock; the kernel releases it when
// the process dies, however it dies), and cleared of the temporaries of runs that died in it.
class OutputDirectoryLock {
 public:
  OutputDirectoryLock(const FlagPath& output, std::ostream& log);
  ~OutputDirectoryLock();
  OutputDirectoryLock(const OutputDirectoryLock&) = delete;
  OutputDirectoryLock& operator=(const OutputDirectoryLock&) = delete;

  static constexpr const char* kLockFile = ".llmhost.lock";

 private:
  int fd_ = -1;
};

// Reports the temporaries of dead processes that were removed from a directory.
void report_removed_leftovers(const std::vector<std::filesystem::path>& removed, std::ostream& log);

}  // namespace llmhost
