#pragma once
// What the emulated kernel tests (tests/sdk/nn/*_emulated_test.cpp) share: "device" buffers with
// guard bytes on both sides, random fills, a switch between the emulation's schedules, and the
// rounding bound of an fp32 sum.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda_emulation.hpp"

namespace llm::test {

// n elements of T, 64-byte aligned (cudaMalloc's are 256), between two guards of 0xFF bytes (a
// NaN as bf16, fp16 and fp32): a kernel that reads past either end puts NaN into its sums, and
// one that writes there is caught by guards_intact().
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n, T fill = T{}) : n_(n) {
    memory_.reset(static_cast<unsigned char*>(std::aligned_alloc(kGuard, total_bytes())));
    std::memset(memory_.get(), 0xFF, total_bytes());
    for (size_t i = 0; i < n; ++i) data()[i] = fill;
  }
  T* data() { return reinterpret_cast<T*>(memory_.get() + kGuard); }
  const T* data() const { return reinterpret_cast<const T*>(memory_.get() + kGuard); }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  size_t size() const { return n_; }
  std::vector<T> values() const { return std::vector<T>(data(), data() + n_); }
  bool guards_intact() const {
    const unsigned char* end = reinterpret_cast<const unsigned char*>(data() + n_);
    const unsigned char* stop = memory_.get() + total_bytes();
    for (const unsigned char* p = memory_.get(); p < memory_.get() + kGuard; ++p) {
      if (*p != 0xFF) return false;
    }
    for (const unsigned char* p = end; p < stop; ++p) {
      if (*p != 0xFF) return false;
    }
    return true;
  }

 private:
  static constexpr size_t kGuard = 64;
  // The guards and the elements rounded up to whole guards (aligned_alloc's sizes are multiples
  // of the alignment).
  size_t total_bytes() const {
    return 2 * kGuard + (n_ * sizeof(T) + kGuard - 1) / kGuard * kGuard;
  }
  struct Free {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  size_t n_;
  std::unique_ptr<unsigned char, Free> memory_;
};

inline void assign(__nv_bfloat16& out, float v) { out = __float2bfloat16_rn(v); }
inline void assign(__half& out, float v) { out = __float2half_rn(v); }
inline void assign(float& out, float v) { out = v; }

// Normal values of standard deviation sigma, rounded to T.
template <typename T>
DeviceBuffer<T> random_values(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  DeviceBuffer<T> out(n);
  for (size_t i = 0; i < n; ++i) assign(out[i], normal(random));
  return out;
}

inline DeviceBuffer<__nv_bfloat16> random_bf16(size_t n, uint32_t seed, float sigma = 1.0f) {
  return random_values<__nv_bfloat16>(n, seed, sigma);
}

inline DeviceBuffer<float> random_fp32(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  DeviceBuffer<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = normal(random);
  return out;
}

inline double value(__nv_bfloat16 h) { return __bfloat162float(h); }
inline double value(__half h) { return __half2float(h); }
inline double value(float f) { return f; }

// T's unit roundoff (half an ulp, relative) and half the spacing of its subnormals.
inline double unit_roundoff(const __nv_bfloat16*) { return std::ldexp(1.0, -8); }
inline double unit_roundoff(const __half*) { return std::ldexp(1.0, -11); }
inline double half_subnormal_spacing(const __nv_bfloat16*) { return std::ldexp(1.0, -134); }
inline double half_subnormal_spacing(const __half*) { return std::ldexp(1.0, -25); }

// |round_T(v) - exact| where |v - exact| <= error: half an ulp of v (or of T's subnormals), and
// the error.
template <typename T>
double rounded_bound(double exact, double error) {
  const T* type = nullptr;
  return unit_roundoff(type) * (std::fabs(exact) + error) + half_subnormal_spacing(type) + error;
}

// |fl(sum) - sum| for `terms` fp32 additions of values whose magnitudes add to `magnitude`: the
// classic gamma_n bound, n u / (1 - n u) with u = 2^-24, doubled for the order the hardware picks
// inside a tensor-core product and for a factor carried in three bf16 parts (2^-24 relative).
inline double fp32_sum_bound(int64_t terms, double magnitude) {
  const double nu = static_cast<double>(terms + 2) * std::ldexp(1.0, -24);
  return 2.0 * nu / (1.0 - nu) * magnitude + 1e-30;
}

// Two results with the same bits (a kernel against the one whose sums it promises).
template <typename T>
void expect_same_bits(const std::vector<T>& a, const std::vector<T>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)), 0) << what;
}

// The emulation's schedules a kernel must give the same bits under: each warp running ahead of
// the others up to the next __syncthreads (the default); every thread resumed in reverse order,
// one step at a time, with copies landing as issued; and warps and lanes shuffled, running ahead,
// the blocks in reverse.
inline std::vector<cuda_emulation::Options> every_schedule() {
  using cuda_emulation::CopyLanding;
  using cuda_emulation::Schedule;
  std::vector<cuda_emulation::Options> all(3);
  all[1].schedule = Schedule::kReversed;
  all[1].warps_run_ahead = false;
  all[1].copies = CopyLanding::kAtIssue;
  all[2].schedule = Schedule::kShuffled;
  all[2].blocks_reversed = true;
  all[2].seed = 7;
  return all;
}

// Runs under `options` until the scope ends, then under the schedule before.
class ScheduleScope {
 public:
  explicit ScheduleScope(const cuda_emulation::Options& options)
      : before_(cuda_emulation::options()) {
    cuda_emulation::set_options(options);
  }
  ~ScheduleScope() { cuda_emulation::set_options(before_); }
  ScheduleScope(const ScheduleScope&) = delete;
  ScheduleScope& operator=(const ScheduleScope&) = delete;

 private:
  cuda_emulation::Options before_;
};

// body() under each of every_schedule(), a failure naming the schedule.
template <typename Body>
void for_every_schedule(Body&& body) {
  const auto all = every_schedule();
  for (size_t s = 0; s < all.size(); ++s) {
    SCOPED_TRACE("emulated schedule " + std::to_string(s));
    ScheduleScope scope(all[s]);
    body();
  }
}

}  // namespace llm::test
