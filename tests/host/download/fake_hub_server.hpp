#pragma once
// Runs tests/host/download/fake_hub.py (a local stand-in for the Hugging Face hub) for one test:
// spawns python3 on 127.0.0.1, reads the port it prints, kills it when the object dies.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"

extern char** environ;

namespace llm::test {

class FakeHubServer {
 public:
  FakeHubServer() {
    const auto script = source_dir() / "tests" / "host" / "download" / "fake_hub.py";
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    std::vector<std::string> args{"python3", script.string(), root_.path().string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, "python3", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    if (rc != 0) {
      ::close(pipe_fds[0]);
      throw std::runtime_error("cannot start python3 " + script.string());
    }
    port_ = read_port(pipe_fds[0]);
    ::close(pipe_fds[0]);
    if (port_ <= 0) {
      stop();
      throw std::runtime_error("fake_hub.py printed no port");
    }
  }
  ~FakeHubServer() { stop(); }
  FakeHubServer(const FakeHubServer&) = delete;
  FakeHubServer& operator=(const FakeHubServer&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& root() const { return root_.path(); }

  // Copies the files of `source` into ROOT/<repo_key> (e.g. "models/EleutherAI/tiny-pythia").
  std::filesystem::path add_repo(const std::string& repo_key, const std::filesystem::path& source) {
    const auto dir = root() / repo_key;
    std::filesystem::create_directories(dir);
    std::filesystem::copy(source, dir, std::filesystem::copy_options::recursive);
    return dir;
  }
  void add_file(const std::string& repo_key, const std::string& name, const std::string& bytes) {
    const auto path = root() / repo_key / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
  }
  void configure(const llm::Json& config) { std::ofstream(root() / "hub.json") << config.dump(); }

  // The requests served so far, one JSON object each (method, path, range, has_auth).
  std::vector<llm::Json> requests() const {
    std::vector<llm::Json> out;
    std::ifstream in(root() / "requests.log");
    for (std::string line; std::getline(in, line);) out.push_back(llm::Json::parse(line));
    return out;
  }

 private:
  static int read_port(int fd) {
    std::string text;
    char buffer[64];
    while (text.find('\n') == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 30000) <= 0) return -1;
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) return -1;
      text.append(buffer, static_cast<size_t>(n));
    }
    return std::stoi(text);
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  TempDir root_;
  pid_t pid_ = -1;
  int port_ = -1;
};

// A local port nothing listens on (bound, then closed): "connection refused".
inline int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace llm::test
