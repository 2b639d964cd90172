#include "tuned_gemm.hpp"

#include <algorithm>

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
namespace {

// What tuned_mm_accumulate adds into: a contiguous [..., n] of a's rows and dtype. Returns n.
int64_t check_accumulate_target(const torch::Tensor& a, const torch::Tensor& w, bool transposed,
                                const torch::Tensor& c) {
  const int64_t n = transposed ? w.size(0) : w.size(1);
  TORCH_CHECK(
      c.is_contiguous() && c.dim() >= 1 && c.size(-1) == n &&
          c.numel() / std::max<int64_t>(n, 1) == a.numel() / std::max<int64_t>(a.size(-1), 1),
      "tuned_mm_accumulate: c must be a contiguous [..., ", n, "] with a's rows");
  TORCH_CHECK(c.scalar_type() == a.scalar_type(), "tuned_mm_accumulate: c is ", c.scalar_type(),
              ", a is ", a.scalar_type());
  return n;
}

}  // namespace

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
  decltype(&cublasLtMatmulAlgoCapGetAttribute) capability = nullptr;
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
      find(l.capability, "cublasLtMatmulAlgoCapGetAttribute");
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

  // d = a op(w) + source (beta 1: the epilogue reads source while the product is compute-bound,
  // where a separate add would stream it twice more); without a source, d = a op(w).
  cublasStatus_t run(const cublasLtMatmulAlgo_t& algo, size_t workspace_bytes,
                     const torch::Tensor& a, const torch::Tensor& w, const torch::Tensor& source,
                     torch::Tensor& d) const {
    torch::Tensor workspace;
    if (workspace_bytes > 0) {
      workspace =
          torch::empty({static_cast<int64_t>(workspace_bytes)}, a.options().dtype(torch::kByte));
    }
    const float one = 1.0f, beta = source.defined() ? 1.0f : 0.0f;
    return lt_.matmul(at::cuda::getCurrentCUDABlasLtHandle(), desc_, &one, w.data_ptr(), w_,
                      a.data_ptr(), a_, &beta, source.defined() ? source.data_ptr() : d.data_ptr(),
                      c_, d.data_ptr(), c_, &algo,
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

// What the product adds its result to: nothing (c = a op(w)), c itself (c += a op(w)), or a
// separate source (c = source + a op(w), source read, c written).
enum class Sum { kNone, kInPlace, kOnto };

using ShapeKey = std::tuple<int, int, int64_t, int64_t, int64_t, bool, Sum>;
std::mutex choices_mutex;
std::map<ShapeKey, Choice> choices;

// The product's source of addition for `sum`: undefined, c, or `source`.
torch::Tensor added(Sum sum, const torch::Tensor& source, const torch::Tensor& c) {
  return sum == Sum::kNone ? torch::Tensor() : sum == Sum::kInPlace ? c : source;
}

// at::mm's choice: mm, or addmm with beta 1 (cuBLAS reads the source in its epilogue; out of
// place, LibTorch copies the source into c first).
void run_at_mm(const torch::Tensor& a, const torch::Tensor& w, bool transposed, Sum sum,
               const torch::Tensor& source, torch::Tensor& c) {
  const auto op_w = transposed ? w.t() : w;
  if (sum == Sum::kNone) {
    at::mm_out(c, a, op_w);
  } else if (sum == Sum::kInPlace) {
    c.addmm_(a, op_w);
  } else {
    at::addmm_out(c, source, a, op_w);
  }
}

cublasStatus_t run_choice(const Choice& choice, const Problem& problem, const torch::Tensor& a,
                          const torch::Tensor& w, bool transposed, Sum sum,
                          const torch::Tensor& source, torch::Tensor& c) {
  if (!choice.lt) {
    run_at_mm(a, w, transposed, sum, source, c);
    return CUBLAS_STATUS_SUCCESS;
  }
  return problem.run(choice.algo, choice.workspace, a, w, added(sum, source, c), c);
}

bool capturing(int device) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaError_t error =
      cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream(device).stream(), &status);
  return error != cudaSuccess || status != cudaStreamCaptureStatusNone;
}

// Milliseconds of ten runs after one that warms up; infinity for an algorithm that fails. (Three
// runs picked differently on two H200s, session 15: the algorithms are a few % apart.)
float time_choice(const Choice& choice, const Problem& problem, const torch::Tensor& a,
                  const torch::Tensor& w, bool transposed, Sum sum, const torch::Tensor& source,
                  torch::Tensor& c) {
  const auto stream = c10::cuda::getCurrentCUDAStream(a.device().index()).stream();
  const auto launch = [&] {
    return run_choice(choice, problem, a, w, transposed, sum, source, c) == CUBLAS_STATUS_SUCCESS;
  };
  if (!launch()) return std::numeric_limits<float>::infinity();
  cudaEvent_t start = nullptr, end = nullptr;
  float ms = std::numeric_limits<float>::infinity();
  if (cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&end) == cudaSuccess &&
      cudaEventRecord(start, stream) == cudaSuccess) {
    bool ok = true;
    for (int i = 0; i < 10 && ok; ++i) ok = launch();
    if (ok && cudaEventRecord(end, stream) == cudaSuccess &&
        cudaEventSynchronize(end) == cudaSuccess) {
      cudaEventElapsedTime(&ms, start, end);
    }
  }
  if (start) cudaEventDestroy(start);
  if (end) cudaEventDestroy(end);
  return ms;
}

// Whether an algorithm writes a result apart from the source it adds (cuBLASLt's capability).
bool writes_out_of_place(const cublasLtMatmulAlgo_t& algo) {
  int32_t supported = 0;
  size_t written = 0;
  return Lt::get().capability(&algo, CUBLASLT_ALGO_CAP_OUT_OF_PLACE_RESULT_SUPPORT, &supported,
                              sizeof(supported), &written) == CUBLAS_STATUS_SUCCESS &&
         supported != 0;
}

// Times the candidates into a scratch c, so an accumulating caller's c is added to once.
Choice tune(const Problem& problem, const torch::Tensor& a, const torch::Tensor& w, bool transposed,
            Sum sum, const torch::Tensor& source, const torch::Tensor& c) {
  auto scratch = torch::zeros_like(c);
  std::vector<Choice> candidates{Choice{}};
  for (const auto& found : problem.algorithms(16)) {
    if (found.state == CUBLAS_STATUS_SUCCESS && found.workspaceSize <= kMaxWorkspace &&
        (sum != Sum::kOnto || writes_out_of_place(found.algo))) {
      candidates.push_back(Choice{true, found.algo, found.workspaceSize});
    }
  }
  Choice best;
  float best_ms = std::numeric_limits<float>::infinity();
  for (const auto& candidate : candidates) {
    const float ms = time_choice(candidate, problem, a, w, transposed, sum, source, scratch);
    if (ms < best_ms) {
      best_ms = ms;
      best = candidate;
    }
  }
  return best;
}

// c [m, n] = a op(w) (+ what `sum` names) through the shape's tuned choice (see tuned_mm).
void tuned_product(const torch::Tensor& a, const torch::Tensor& w, bool transposed, Sum sum,
                   const torch::Tensor& source, torch::Tensor& c) {
  const int64_t m = a.size(0), k = a.size(1), n = c.size(1);
  TORCH_CHECK(k == (transposed ? w.size(1) : w.size(0)), "tuned_mm: a is [..., ", k, "] and w ",
              w.sizes(), transposed ? " (transposed)" : "");
  const int device = a.device().index();
  const c10::cuda::CUDAGuard guard(a.device());
  const Problem problem(m, n, k, transposed, a.scalar_type());
  const ShapeKey key{device, static_cast<int>(a.scalar_type()), m, n, k, transposed, sum};
  std::lock_guard<std::mutex> lock(choices_mutex);
  auto found = choices.find(key);
  if (found == choices.end()) {
    if (capturing(device) || choices.size() >= kMaxShapes) {
      run_at_mm(a, w, transposed, sum, source, c);
      return;
    }
    found = choices.emplace(key, tune(problem, a, w, transposed, sum, source, c)).first;
  }
  check(run_choice(found->second, problem, a, w, transposed, sum, source, c), "matmul");
}

}  // namespace

bool tuned_mm_applies(const torch::Tensor& a, const torch::Tensor& w) {
  if (!kernels_switched_on("LLMHOST_TUNED_GEMM") || !Lt::get().loaded) return false;
  if (!a.is_cuda() || !w.is_cuda() || a.device() != w.device()) return false;
  if (a.scalar_type() != w.scalar_type()) return false;
  if (a.scalar_type() != torch::kBFloat16 && a.scalar_type() != torch::kHalf) return false;
  // Rows of whole 16-byte packs, so every operand the algorithms see is 16-byte aligned.
  return w.dim() == 2 && a.dim() >= 1 && a.numel() > 0 && w.numel() > 0 && w.size(0) % 8 == 0 &&
         w.size(1) % 8 == 0;
}

torch::Tensor tuned_mm(const torch::Tensor& a_in, const torch::Tensor& w_in, bool transposed) {
  if (!tuned_mm_applies(a_in, w_in)) {
    return at::matmul(a_in, transposed ? w_in.t() : w_in).contiguous();
  }
  const int64_t n = transposed ? w_in.size(0) : w_in.size(1);
  auto sizes = a_in.sizes().vec();
  sizes.back() = n;
  const auto a = packed(a_in.reshape({-1, a_in.size(-1)}));
  auto c = torch::empty({a.size(0), n}, a.options());
  tuned_product(a, packed(w_in), transposed, Sum::kNone, torch::Tensor(), c);
  return c.view(sizes);
}

void tuned_mm_accumulate(const torch::Tensor& a_in, const torch::Tensor& w_in, bool transposed,
                         torch::Tensor& c_in) {
  const int64_t n = check_accumulate_target(a_in, w_in, transposed, c_in);
  auto c = c_in.view({-1, n});
  const auto a = a_in.reshape({-1, a_in.size(-1)});
  // The algorithms were asked for with 16-byte aligned operands; c is written in place.
  if (!tuned_mm_applies(a_in, w_in) || !aligned16(c)) {
    c.addmm_(a, transposed ? w_in.t() : w_in);
    return;
  }
  tuned_product(packed(a), packed(w_in), transposed, Sum::kInPlace, torch::Tensor(), c);
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

// residual + x w^T as one product: the residual is the epilogue's source, so the residual stream's
// add is not a pass of its own. Backward hands dy to the residual as it is.
class TunedLinearOnto : public torch::autograd::Function<TunedLinearOnto> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w, const torch::Tensor& residual) {
    ctx->save_for_backward({w});
    const auto a = packed(x.reshape({-1, x.size(-1)}));
    auto out = torch::empty_like(residual, torch::MemoryFormat::Contiguous);
    auto c = out.view({-1, w.size(0)});
    tuned_product(a, packed(w), true, Sum::kOnto, residual.reshape({-1, w.size(0)}), c);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto w = ctx->get_saved_variables()[0];
    const auto& dy = grad_outputs[0];
    return {ctx->needs_input_grad(0) ? tuned_mm(dy, w, false) : torch::Tensor(), torch::Tensor(),
            ctx->needs_input_grad(2) ? dy : torch::Tensor()};
  }
};

}  // namespace

torch::Tensor frozen_linear_onto(const torch::Tensor& x, const torch::Tensor& w,
                                 const torch::Tensor& residual) {
  auto sizes = x.sizes().vec();
  sizes.back() = w.size(0);
  // The residual laid out as the product's output, 16-byte aligned (the algorithms were asked
  // for with aligned operands).
  const bool fits = torch::GradMode::is_enabled() && !w.requires_grad() &&
                    kernels_switched_on("LLMHOST_GEMM_EPILOGUE_ADD") && tuned_mm_applies(x, w) &&
                    x.size(-1) == w.size(1) && residual.sizes() == c10::IntArrayRef(sizes) &&
                    residual.is_contiguous() && aligned16(residual) &&
                    residual.scalar_type() == x.scalar_type() && residual.device() == x.device();
  if (!fits) return residual + frozen_linear(x, w);
  return TunedLinearOnto::apply(x, w, residual);
}

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

void tuned_mm_accumulate(const torch::Tensor& a, const torch::Tensor& w, bool transposed,
                         torch::Tensor& c) {
  const int64_t n = check_accumulate_target(a, w, transposed, c);
  c.view({-1, n}).addmm_(a.reshape({-1, a.size(-1)}), transposed ? w.t() : w);
}

torch::Tensor frozen_linear(const torch::Tensor& x, const torch::Tensor& w) {
  return torch::linear(x, w);
}

torch::Tensor frozen_linear_onto(const torch::Tensor& x, const torch::Tensor& w,
                                 const torch::Tensor& residual) {
  return residual + torch::linear(x, w);
}

#endif

}  // namespace llm::fused
