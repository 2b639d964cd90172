#pragma once
#include <string>

namespace llmhost_bench {

// Records a Kineto trace (CPU ops and CUDA kernels, as torch.profiler does) from construction to
// destruction and saves it as Chrome trace JSON at `path`. LibTorch 1.x: prints that it cannot.
class KinetoTrace {
 public:
  explicit KinetoTrace(std::string path);
  ~KinetoTrace();
  KinetoTrace(const KinetoTrace&) = delete;
  KinetoTrace& operator=(const KinetoTrace&) = delete;

 private:
  std::string path_;
  bool active_ = false;
};

}  // namespace llmhost_bench
