#pragma once
// Plugin files are checked by reading them before dlopen maps them: a truncated or damaged
// library would be mapped past the end of its file, and the first touch of a missing page kills
// the process with SIGBUS, whatever the task.
#include <filesystem>
#include <string>

namespace llmhost {

// Why `path` cannot be a shared library for this machine (not a regular file, not ELF, another
// class, byte order or machine, not ET_DYN, a header table or segment past the end of the file),
// or "" when its structure holds.
std::string elf_library_problem(const std::filesystem::path& path);

}  // namespace llmhost
