#include "tuned_gemm.hpp"

#ifdef LLM_WITH_CUBLASLT
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <limits>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "cuda_launch.hpp"

// getCurrentCUDABlasLtHandle() is there from LibTorch 2.3.
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 3)
#undef LLM_WITH_CUBLASLT
#endif
#endif

namespace llm::fused {

#ifdef LLM_WITH_CUBLASLT
namespace {

// cuBLASLt as LibTorch already loaded it: the same library LibTorch calls, found by its soname,
// so the SDK links no second copy from the CUDA toolkit.
struct Lt {
  decltype(&cublasLtMatmulDescCreate) desc_create = nullptr;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set = nullptr;
  decltype(&cublasLtMatmulDescDestroy) desc_destroy = nullptr;
  decltype(&cublasLtMatrixLayoutCreate) layout_create = nullptr;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy = nullptr;
  decltype(&cublasLtMatmulPreferenceCreate) preference_create = nullptr;
  decltype(&cublasLtMatmulPreferenceSetAttribute) preference_set = nullptr;
  decltype(&cublasLtMatmulPreferenceDestroy) preference_destroy = nullptr;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&cublasLtMatmul) matmul = nullptr;
  bool loaded = false;

  static const Lt& get() {
    static const Lt lt = [] {
      Lt l;
      const std::string soname = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
      void* library = dlopen(soname.c_str(), RTLD_NOW | RTLD_NOLOAD);
      if (library == nullptr) return l;
      bool all = true;
      const auto find = [&](auto& f, const char* name) {
        f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(library, name));
        all = all && f != nullptr;
      };
      find(l.desc_create, "cublasLtMatmulDescCreate");
      find(l.desc_set, "cublasLtMatmulDescSetAttribute");
      find(l.desc_destroy, "cublasLtMatmulDescDestroy");
      find(l.layout_create, "cublasLtMatrixLayoutCreate");
      find(l.layout_destroy, "cublasLtMatrixLayoutDestroy");
      find(l.preference_create, "cublasLtMatmulPreferenceCreate");
      find(l.preference_set, "cublasLtMatmulPreferenceSetAttribute");
      find(l.preference_destroy, "cublasLtMatmulPreferenceDestroy");
      find(l.heuristic, "cublasLtMatmulAlgoGetHeuristic");
      find(l.matmul, "cublasLtMatmul");
      l.loaded = all;
      return l;
    }();
    return lt;
  }
};

void check(cublasStatus_t status, const char* what) {
  TORCH_CHECK(status == CUBLAS_STATUS_SUCCESS, "cuBLASLt ", what, " failed (status ",
              static_cast<int>(status), ")");
}

constexpr size_t kMaxWorkspace = size_t{32} << 20;
constexpr size_t kMaxShapes = 256;

// c [m, n] = a [m, k] op(w), row-major, as cuBLASLt's column-major c^T [n, m] = op(w)^T a^T.
class Problem {
 public:
  Problem(int64_t m, int64_t n, int64_t k, bool transposed, torch::ScalarType dtype)
      : lt_(Lt::get()) {
    try {
      const cudaDataType_t type = dtype == torch::kHalf ? CUDA_R_16F : CUDA_R_16BF;
      check(lt_.desc_create(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "descriptor");
      const cublasOperation_t op_w = transposed ? CUBLAS_OP_T : CUBLAS_OP_N, op_a = CUBLAS_OP_N;
      check(lt_.desc_set(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &op_w, sizeof(op_w)), "descriptor");
      check(lt_.desc_set(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &op_a, sizeof(op_a)), "descriptor");
      check(transposed ? lt_.layout_create(&w_, type, k, n, k)
                       : lt_.layout_create(&w_, type, n, k, n),
            "layout");
      check(lt_.layout_create(&a_, type, k, m, k), "layout");
      check(lt_.layout_create(&c_, type, n, m, n), "layout");
    } catch (...) {
      release();
      throw;
    }
  }
  ~Problem() { release(); }
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;

  // Up to `wanted` algorithms for 16-byte aligned operands within kMaxWorkspace.
  std::vector<cublasLtMatmulHeuristicResult_t> algorithms(int wanted) const {
    cublasLtMatmulPreference_t preference = nullptr;
    check(lt_.preference_create(&preference), "preference");
    std::vector<cublasLtMatmulHeuristicResult_t> found(wanted);
    int returned = 0;
    const uint32_t alignment = 16;
    cublasStatus_t status = lt_.preference_set(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                               &kMaxWorkspace, sizeof(kMaxWorkspace));
    for (const auto attribute :
         {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
      if (status == CUBLAS_STATUS_SUCCESS) {
        status = lt_.preference_set(preference, attribute, &alignment, sizeof(alignment));
      }
    }
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = lt_.heuristic(at::cuda::getCurrentCUDABlasLtHandle(), desc_, w_, a_, c_, c_,
                             preference, wanted, found.data(), &returned);
    }
    lt_.preference_destroy(preference);
    found.resize(status == CUBLAS_STATUS_SUCCESS ? returned : 0);
    return found;
  }

  cublasStatus_t run(const cublasLtMatmulAlgo_t& algo, size_t workspace_bytes,
                     const torch::Tensor& a, const torch::Tensor& w, torch::Tensor& c) const {
    torch::Tensor workspace;
    if (workspace_bytes > 0) {
      workspace =
          torch::empty({static_cast<int64_t>(workspace_bytes)}, a.options().dtype(torch::kByte));
    }
    const float one = 1.0f, zero = 0.0f;
    return lt_.matmul(at::cuda::getCurrentCUDABlasLtHandle(), desc_, &one, w.data_ptr(), w_,
                      a.data_ptr(), a_, &zero, c.data_ptr(), c_, c.data_ptr(), c_, &algo,
                      workspace_bytes > 0 ? workspace.data_ptr() : nullptr, workspace_bytes,
                      c10::cuda::getCurrentCUDAStream(a.device().index()).stream());
  }

 private:
  void release() {
    if (c_) lt_.layout_destroy(c_);
    if (a_) lt_.layout_destroy(a_);
    if (w_) lt_.layout_destroy(w_);
    if (desc_) lt_.desc_destroy(desc_);
    c_ = a_ = w_ = nullptr;
    desc_ = nullptr;
  }

  const Lt& lt_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t w_ = nullptr, a_ = nullptr, c_ = nullptr;
};

struct Choice {
  bool lt = false;  // false: at::mm
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

using ShapeKey = std::tuple<int, int, int64_t, int64_t, int64_t, bool>;
std::mutex choices_mutex;
std::map<ShapeKey, Choice> choices;

void run_choice(const Choice& choice, const Problem& problem, const torch::Tensor& a,
                const torch::Tensor& w, bool transposed, torch::Tensor& c) {
  if (choice.lt) {
    check(problem.run(choice.algo, choice.workspace, a, w, c), "matmul");
  } else {
    at::mm_out(c, a, transposed ? w.t() : w);
  }
}

bool capturing(int device) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaError_t error =
      cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream(device).stream(), &status);
  return error != cudaSuccess || status != cudaStreamCaptureStatusNone;
}

// Milliseconds of three runs after one that warms up; infinity for an algorithm that fails.
float time_choice(const Choice& choice, const Problem& problem, const torch::Tensor& a,
                  const torch::Tensor& w, bool transposed, torch::Tensor& c) {
  const auto stream = c10::cuda::getCurrentCUDAStream(a.device().index()).stream();
  const auto launch = [&] {
    return choice.lt ? problem.run(choice.algo, choice.workspace, a, w, c) == CUBLAS_STATUS_SUCCESS
                     : (at::mm_out(c, a, transposed ? w.t() : w), true);
  };
  if (!launch()) return std::numeric_limits<float>::infinity();
  cudaEvent_t start = nullptr, end = nullptr;
  float ms = std::numeric_limits<float>::infinity();
  if (cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&end) == cudaSuccess &&
      cudaEventRecord(start, stream) == cudaSuccess) {
    bool ok = true;
    for (int i = 0; i < 3 && ok; ++i) ok = launch();
    if (ok && cudaEventRecord(end, stream) == cudaSuccess &&
        cudaEventSynchronize(end) == cudaSuccess) {
      cudaEventElapsedTime(&ms, start, end);
    }
  }
  if (start) cudaEventDestroy(start);
  if (end) cudaEventDestroy(end);
  return ms;
}

Choice tune(const Problem& problem, const torch::Tensor& a, const torch::Tensor& w, bool transposed,
            torch::Tensor& c) {
  std::vector<Choice> candidates{Choice{}};
  for (const auto& found : problem.algorithms(16)) {
    if (found.state == CUBLAS_STATUS_SUCCESS && found.workspaceSize <= kMaxWorkspace) {
      candidates.push_back(Choice{true, found.algo, found.workspaceSize});
    }
  }
  Choice best;
  float best_ms = std::numeric_limits<float>::infinity();
  for (const auto& candidate : candidates) {
    const float ms = time_choice(candidate, problem, a, w, transposed, c);
    if (ms < best_ms) {
      best_ms = ms;
      best = candidate;
    }
  }
  return best;
}

}  // namespace

bool tuned_mm_applies(const torch::Tensor& a, const torch::Tensor& w) {
  if (!kernels_switched_on("LLMHOST_TUNED_GEMM") || !Lt::get().loaded) return false;
  if (!a.is_cuda() || !w.is_cuda() || a.device() != w.device()) return false;
  if (a.scalar_type() != w.scalar_type()) return false;
  if (a.scalar_type() != torch::kBFloat16 && a.scalar_type() != torch::kHalf) return false;
  // Rows of whole 16-byte packs, so every operand the algorithms see is 16-byte aligned.
  return w.dim() == 2 && a.dim() >= 1 && a.numel() > 0 && w.size(0) % 8 == 0 && w.size(1) % 8 == 0;
}

torch::Tensor tuned_mm(const torch::Tensor& a_in, const torch::Tensor& w_in, bool transposed) {
  if (!tuned_mm_applies(a_in, w_in)) {
    return at::matmul(a_in, transposed ? w_in.t() : w_in).contiguous();
  }
  const int64_t n = transposed ? w_in.size(0) : w_in.size(1);
  auto sizes = a_in.sizes().vec();
  sizes.back() = n;
  const auto a = packed(a_in.reshape({-1, a_in.size(-1)})), w = packed(w_in);
  const int64_t m = a.size(0), k = a.size(1);
  TORCH_CHECK(k == (transposed ? w.size(1) : w.size(0)), "tuned_mm: a is [..., ", k, "] and w ",
              w.sizes(), transposed ? " (transposed)" : "");
  const int device = a.device().index();
  const c10::cuda::CUDAGuard guard(a.device());
  auto c = torch::empty({m, n}, a.options());
  const Problem problem(m, n, k, transposed, a.scalar_type());
  const ShapeKey key{device, static_cast<int>(a.scalar_type()), m, n, k, transposed};
  std::lock_guard<std::mutex> lock(choices_mutex);
  auto found = choices.find(key);
  if (found == choices.end()) {
    if (capturing(device) || choices.size() >= kMaxShapes) {
      run_choice(Choice{}, problem, a, w, transposed, c);
      return c.view(sizes);
    }
    found = choices.emplace(key, tune(problem, a, w, transposed, c)).first;
  }
  run_choice(found->second, problem, a, w, transposed, c);
  return c.view(sizes);
}

namespace {

class TunedLinear : public torch::autograd::Function<TunedLinear> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w) {
    ctx->save_for_backward({w});
    return tuned_mm(x, w, true);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto w = ctx->get_saved_variables()[0];
    return {tuned_mm(grad_outputs[0], w, false), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor frozen_linear(const torch::Tensor& x, const torch::Tensor& w) {
  // Training only: inference sees a new shape per prompt length, each of which would be timed.
  if (!torch::GradMode::is_enabled() || w.requires_grad() || !tuned_mm_applies(x, w) ||
      x.size(-1) != w.size(1)) {
    return torch::linear(x, w);
  }
  return TunedLinear::apply(x, w);
}

#else

bool tuned_mm_applies(const torch::Tensor&, const torch::Tensor&) { return false; }

torch::Tensor tuned_mm(const torch::Tensor& a, const torch::Tensor& w, bool transposed) {
  return torch::matmul(a, transposed ? w.t() : w).contiguous();
}

torch::Tensor frozen_linear(const torch::Tensor& x, const torch::Tensor& w) {
  return torch::linear(x, w);
}

#endif

}  // namespace llm::fused
