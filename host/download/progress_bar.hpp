#pragma once
// Per-file download progress on stderr: a redrawn bar (bytes, rate, ETA) on a terminal, a line at
// start and end otherwise (logs and CI stay readable).
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace llmhost::download {

std::string format_bytes(uint64_t bytes);     // "1.5 MiB"
std::string format_duration(double seconds);  // "1:05", "2:03:04"

class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;

  // `total`: the listed size when known; `start`: bytes already on disk (resume).
  ProgressBar(std::ostream& err, bool interactive, std::string name, std::optional<uint64_t> total,
              uint64_t start);
  void update(uint64_t bytes_now);  // cheap; redraws at most every 100 ms
  void restart_from_zero();         // the server ignored the Range request
  void finish();                    // final line
  void abandon();                   // ends a redrawn bar before an error or retry message

  // The bar line for a state, without control characters (exposed for tests).
  static std::string render(const std::string& name, uint64_t bytes, std::optional<uint64_t> total,
                            double bytes_per_second);

 private:
  void draw(bool force);
  double rate() const;

  std::ostream& err_;
  bool interactive_;
  std::string name_;
  std::optional<uint64_t> total_;
  uint64_t start_bytes_;
  uint64_t bytes_ = 0;
  Clock::time_point started_;
  Clock::time_point last_draw_;
  bool drawn_ = false;
};

}  // namespace llmhost::download
