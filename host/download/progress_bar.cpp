#include "download/progress_bar.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace llmhost::download {

std::string format_bytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  }
  return text;
}

std::string format_duration(double seconds) {
  const auto total = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, (total / 60) % 60,
                  total % 60);
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
  }
  return text;
}

ProgressBar::ProgressBar(std::ostream& err, bool interactive, std::string name,
                         std::optional<uint64_t> total, uint64_t start)
    : err_(err),
      interactive_(interactive),
      name_(std::move(name)),
      total_(total),
      start_bytes_(start),
      bytes_(start),
      started_(Clock::now()),
      last_draw_(started_) {
  if (!interactive_) {
    err_ << "downloading " << name_ << (total_ ? " (" + format_bytes(*total_) + ")" : "");
    if (start > 0) err_ << ", resuming at " << format_bytes(start);
    err_ << "\n";
  } else {
    draw(true);
  }
}

std::string ProgressBar::render(const std::string& name, uint64_t bytes,
                                std::optional<uint64_t> total, double bytes_per_second) {
  constexpr int kWidth = 24;
  std::string line = name + " ";
  if (total && *total > 0) {
    const double fraction = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(*total));
    const int filled = static_cast<int>(fraction * kWidth);
    line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    char percent[16];
    std::snprintf(percent, sizeof percent, "%3d%% ", static_cast<int>(fraction * 100));
    line += percent;
  }
  line += format_bytes(bytes);
  if (total) line += " / " + format_bytes(*total);
  if (bytes_per_second > 0) {
    line += "  " + format_bytes(static_cast<uint64_t>(bytes_per_second)) + "/s";
    if (total && *total > bytes) {
      line += "  ETA " + format_duration(static_cast<double>(*total - bytes) / bytes_per_second);
    }
  }
  return line;
}

double ProgressBar::rate() const {
  const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  if (seconds <= 0 || bytes_ <= start_bytes_) return 0;
  return static_cast<double>(bytes_ - start_bytes_) / seconds;
}

void ProgressBar::draw(bool force) {
  if (!interactive_) return;
  const auto now = Clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  // \33[K clears what a longer previous line left behind.
  err_ << "\r" << render(name_, bytes_, total_, rate()) << "\33[K" << std::flush;
  drawn_ = true;
}

void ProgressBar::update(uint64_t bytes_now) {
  bytes_ = bytes_now;
  draw(false);
}

void ProgressBar::restart_from_zero() {
  start_bytes_ = 0;
  bytes_ = 0;
  started_ = Clock::now();
  if (!interactive_) err_ << name_ << ": the server ignored the range request; restarting\n";
  draw(true);
}

void ProgressBar::finish() {
  if (interactive_) {
    draw(true);
    err_ << "\n" << std::flush;
    drawn_ = false;
    return;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  err_ << "downloaded " << name_ << ": " << format_bytes(bytes_) << " in "
       << format_duration(seconds);
  if (rate() > 0) err_ << " (" << format_bytes(static_cast<uint64_t>(rate())) << "/s)";
  err_ << "\n";
}

void ProgressBar::abandon() {
  if (interactive_ && drawn_) err_ << "\n" << std::flush;
  drawn_ = false;
}

}  // namespace llmhost::download
