#include "elf_check.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace llmhost {

namespace {

#if defined(__x86_64__)
constexpr uint16_t kMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kMachine = EM_AARCH64;
#else
#error "llmhost plugins: set the ELF machine of this architecture"
#endif

// [offset, offset + count * size) lies inside a file of `file_size` bytes (no overflow).
bool fits(uint64_t offset, uint64_t count, uint64_t size, uint64_t file_size) {
  if (offset > file_size) return false;
  if (size != 0 && count > (file_size - offset) / size) return false;
  return true;
}

bool read_at(int fd, void* buffer, size_t bytes, uint64_t offset) {
  auto* out = static_cast<char*>(buffer);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, out, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    bytes -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

std::string truncated(const std::string& what, uint64_t end, uint64_t file_size) {
  return "is truncated or damaged: its " + what + " ends at byte " + std::to_string(end) +
         ", past the end of the " + std::to_string(file_size) + "-byte file";
}

std::string check(int fd, uint64_t size) {
  Elf64_Ehdr header{};
  if (size < EI_NIDENT || !read_at(fd, header.e_ident, EI_NIDENT, 0) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
    return "is not an ELF shared library (no ELF magic number)";
  }
  if (header.e_ident[EI_CLASS] != ELFCLASS64) return "is not a 64-bit ELF library";
  if (header.e_ident[EI_DATA] != ELFDATA2LSB) return "has the wrong byte order for this machine";
  if (size < sizeof(header)) {
    return truncated("ELF header", sizeof(header), size);
  }
  if (!read_at(fd, &header, sizeof(header), 0)) return "cannot be read";
  if (header.e_type != ET_DYN) {
    return "is not a shared library (ELF type " + std::to_string(header.e_type) + ")";
  }
  if (header.e_machine != kMachine) {
    return "is built for another machine (ELF machine " + std::to_string(header.e_machine) + ")";
  }
  if (header.e_phnum == 0 || header.e_phentsize != sizeof(Elf64_Phdr)) {
    return "is damaged: it has no valid program header table";
  }
  if (!fits(header.e_phoff, header.e_phnum, sizeof(Elf64_Phdr), size)) {
    return truncated("program header table", header.e_phoff + header.e_phnum * sizeof(Elf64_Phdr),
                     size);
  }
  if (header.e_shoff != 0) {
    if (header.e_shentsize != sizeof(Elf64_Shdr)) return "is damaged: bad section header size";
    // e_shnum 0 with a table: the count is in the first entry (more than 0xff00 sections).
    const uint64_t sections = header.e_shnum != 0 ? header.e_shnum : 1;
    if (!fits(header.e_shoff, sections, sizeof(Elf64_Shdr), size)) {
      return truncated("section header table", header.e_shoff + sections * sizeof(Elf64_Shdr),
                       size);
    }
    std::vector<Elf64_Shdr> table(sections);
    if (!read_at(fd, table.data(), sections * sizeof(Elf64_Shdr), header.e_shoff)) {
      return "cannot be read";
    }
    for (size_t i = 0; i < table.size(); ++i) {
      const auto& section = table[i];
      if (section.sh_type == SHT_NOBITS || section.sh_type == SHT_NULL) continue;
      if (!fits(section.sh_offset, 1, section.sh_size, size)) {
        return truncated("section " + std::to_string(i), section.sh_offset + section.sh_size, size);
      }
    }
  }
  std::vector<Elf64_Phdr> segments(header.e_phnum);
  if (!read_at(fd, segments.data(), segments.size() * sizeof(Elf64_Phdr), header.e_phoff)) {
    return "cannot be read";
  }
  bool loadable = false;
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& segment = segments[i];
    if (segment.p_type == PT_LOAD) loadable = true;
    if (segment.p_filesz == 0) continue;
    // The loader maps these bytes: every one of them must be in the file.
    if (!fits(segment.p_offset, 1, segment.p_filesz, size)) {
      return truncated("segment " + std::to_string(i), segment.p_offset + segment.p_filesz, size);
    }
    if (segment.p_type == PT_LOAD && segment.p_filesz > segment.p_memsz) {
      return "is damaged: segment " + std::to_string(i) + " is larger in the file than in memory";
    }
  }
  if (!loadable) return "is damaged: it has no loadable segment";
  return "";
}

}  // namespace

std::string elf_library_problem(const std::filesystem::path& path) {
  // O_NONBLOCK: a FIFO named like a plugin must not hang the scan.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::string("cannot be opened: ") + std::strerror(errno);
  struct stat info {};
  std::string problem;
  if (::fstat(fd, &info) != 0) {
    problem = std::string("cannot be read: ") + std::strerror(errno);
  } else if (!S_ISREG(info.st_mode)) {
    problem = "is not a regular file";
  } else {
    problem = check(fd, static_cast<uint64_t>(info.st_size));
  }
  ::close(fd);
  return problem;
}

}  // namespace llmhost
