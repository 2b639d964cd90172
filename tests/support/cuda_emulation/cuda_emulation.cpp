// The fibers behind cuda_emulation.hpp: a block's threads as fibers, resumed by one scheduler on
// the calling thread, with the barriers and warp operations as the points where a fiber yields.
#include "cuda_emulation.hpp"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LLM_EMULATION_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LLM_EMULATION_ASAN 1
#endif
#endif
#ifdef LLM_EMULATION_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace cuda_emulation {
namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "cuda emulation: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

enum class State { kRunnable, kAtBlockBarrier, kAtWarpBarrier, kDone };

struct Copy {
  void* shared;
  const void* global;
  size_t bytes;
  int group;  // 0: not yet committed
};

constexpr size_t kStackBytes = 256 * 1024;

void thread_main();

#if defined(__x86_64__)
// A fiber is its stack pointer: switching pushes the callee-saved registers and the SSE and x87
// control words on the stack left and pops them from the one entered (no system call, where
// swapcontext saves the signal mask with one: a wrapping ring test ran 29 s against ~4 s).
struct Context {
  void* sp = nullptr;
  const void* stack = nullptr;  // its stack's lowest address and size (AddressSanitizer's)
  size_t stack_bytes = 0;
};
extern "C" void llm_cuda_emulation_switch(void** save, void* load);
asm(R"(
  .pushsection .text
  .globl llm_cuda_emulation_switch
  .hidden llm_cuda_emulation_switch
  .type llm_cuda_emulation_switch, @function
llm_cuda_emulation_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size llm_cuda_emulation_switch, .-llm_cuda_emulation_switch
  .popsection
)");

void raw_switch(Context& to, Context& from) { llm_cuda_emulation_switch(&from.sp, to.sp); }

// A stack laid out as llm_cuda_emulation_switch leaves one, returning into thread_main.
void start_context(Context& context, char* stack, size_t bytes) {
  auto* top =
      reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t{15});
  uint32_t control[2] = {0, 0};
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(control[0]), "=m"(control[1]));
  *--top = 0;  // thread_main's return address: it never returns
  *--top = reinterpret_cast<uint64_t>(&thread_main);
  for (int reg = 0; reg < 6; ++reg) *--top = 0;
  *--top = uint64_t{control[0]} | uint64_t{control[1] & 0xFFFFu} << 32;
  context.sp = top;
  context.stack = stack;
  context.stack_bytes = bytes;
}
#else
struct Context {
  ucontext_t uc;
  const void* stack = nullptr;
  size_t stack_bytes = 0;
};
void raw_switch(Context& to, Context& from) {
  if (swapcontext(&from.uc, &to.uc) != 0) fail("swapcontext failed");
}
void start_context(Context& context, char* stack, size_t bytes) {
  if (getcontext(&context.uc) != 0) fail("getcontext failed");
  context.uc.uc_stack.ss_sp = stack;
  context.uc.uc_stack.ss_size = bytes;
  context.uc.uc_link = nullptr;
  makecontext(&context.uc, thread_main, 0);
  context.stack = stack;
  context.stack_bytes = bytes;
}
#endif

// From `from` to `to`, telling AddressSanitizer which stack runs next (its documented fiber
// protocol; without it, a switched stack reads as overflowed); `from_ends`: never resumed.
void switch_to(Context& to, Context& from, bool from_ends = false) {
#ifdef LLM_EMULATION_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(from_ends ? nullptr : &fake_stack, to.stack, to.stack_bytes);
  raw_switch(to, from);
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
  (void)from_ends;
  raw_switch(to, from);
#endif
}

// A fiber's first code: where AddressSanitizer learns the scheduler's stack.
void entered_fiber(Context& scheduler) {
#ifdef LLM_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &scheduler.stack, &scheduler.stack_bytes);
#else
  (void)scheduler;
#endif
}

}  // namespace

struct ThreadState {
  Context context;
  uint3 index;
  int rank = 0;  // linear index in the block: x fastest, as CUDA numbers a block's threads
  State state = State::kRunnable;
  std::vector<Copy> copies;
  int committed = 0;
};

namespace {

struct Warp {
  unsigned char slots[32][kLaneBytes];
  const char* operations[32];
};

struct Block {
  const std::function<void()>* body = nullptr;
  uint3 index{};
  dim3 dim, grid;
  std::vector<ThreadState> threads;
  std::vector<Warp> warps;
  Context scheduler;
  ThreadState* current = nullptr;
};

thread_local Block* running = nullptr;
thread_local std::vector<std::unique_ptr<char[]>> stacks;
thread_local cudaError_t last_error = cudaSuccess;
Options current_options;

ThreadState& current_thread() {
  if (running == nullptr || running->current == nullptr)
    fail("a device function ran outside a kernel");
  return *running->current;
}

void yield(State state) {
  ThreadState& t = current_thread();
  t.state = state;
  switch_to(running->scheduler, t.context);
}

void land(Copy& copy) { std::memcpy(copy.shared, copy.global, copy.bytes); }

void land_all(ThreadState& t) {
  for (Copy& copy : t.copies) land(copy);
  t.copies.clear();
}

void thread_main() {
  Block& block = *running;
  entered_fiber(block.scheduler);
  (*block.body)();
  ThreadState& t = *block.current;
  land_all(t);  // a thread's copies complete even when it never waits on them
  t.state = State::kDone;
  switch_to(block.scheduler, t.context, /*from_ends=*/true);
  fail("a finished thread was resumed");
}

std::vector<int> order_of(size_t count, std::mt19937& random) {
  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  if (current_options.schedule == Schedule::kReversed) {
    std::reverse(order.begin(), order.end());
  } else if (current_options.schedule == Schedule::kShuffled) {
    std::shuffle(order.begin(), order.end(), random);
  }
  return order;
}

std::string where(const Block& block) {
  return "block (" + std::to_string(block.index.x) + ", " + std::to_string(block.index.y) + ", " +
         std::to_string(block.index.z) + ")";
}

// Lets warp `w` go on where its live lanes all wait at a warp operation; a warp operation that
// some lane of the warp has left (or never reaches) is an error, as it is undefined on a GPU.
bool release_warp(Block& block, size_t w) {
  const size_t first = 32 * w, end = std::min(block.threads.size(), first + 32);
  size_t waiting = 0, done = 0;
  for (size_t i = first; i < end; ++i) {
    waiting += block.threads[i].state == State::kAtWarpBarrier;
    done += block.threads[i].state == State::kDone;
  }
  if (waiting == 0) return false;
  if (end - first != 32) fail(where(block) + ": a warp operation in a partial warp");
  if (done != 0) fail(where(block) + ": a warp operation some lanes of the warp left before");
  if (waiting != 32) return false;
  for (size_t i = first; i < end; ++i) block.threads[i].state = State::kRunnable;
  return true;
}

bool release_block(Block& block) {
  size_t waiting = 0, done = 0;
  for (const ThreadState& t : block.threads) {
    waiting += t.state == State::kAtBlockBarrier;
    done += t.state == State::kDone;
  }
  if (waiting == 0 || waiting + done != block.threads.size()) return false;
  if (done != 0) fail(where(block) + ": __syncthreads that some threads of the block left before");
  for (ThreadState& t : block.threads) t.state = State::kRunnable;
  return true;
}

// Resumes each runnable lane of warp `w` once, in `lanes` order; whether any ran.
bool run_warp(Block& block, size_t w, const std::vector<int>& lanes) {
  bool ran = false;
  for (int lane : lanes) {
    const size_t i = 32 * w + static_cast<size_t>(lane);
    if (i >= block.threads.size() || block.threads[i].state != State::kRunnable) continue;
    ThreadState& t = block.threads[i];
    block.current = &t;
    switch_to(t.context, block.scheduler);
    block.current = nullptr;
    ran = true;
  }
  return ran;
}

void run_block(Block& block, std::mt19937& random) {
  const size_t n = block.threads.size(), warps = (n + 31) / 32;
  while (stacks.size() < n) stacks.emplace_back(new char[kStackBytes]);
  for (size_t i = 0; i < n; ++i) {
    ThreadState& t = block.threads[i];
    t = ThreadState{};
    t.rank = static_cast<int>(i);
    t.index = {static_cast<unsigned>(i % block.dim.x),
               static_cast<unsigned>(i / block.dim.x % block.dim.y),
               static_cast<unsigned>(i / (block.dim.x * block.dim.y))};
#ifdef LLM_EMULATION_ASAN
    // The last block's fibers ended mid-frame: their redzones would read as this one's.
    __asan_unpoison_memory_region(stacks[i].get(), kStackBytes);
#endif
    start_context(t.context, stacks[i].get(), kStackBytes);
  }
  for (;;) {
    bool progress = false;
    for (int w : order_of(warps, random)) {
      const auto lanes = order_of(32, random);
      const auto warp = static_cast<size_t>(w);
      // Running ahead: the warp goes on through its warp operations until it waits at
      // __syncthreads or ends, before any other warp runs (a GPU may order warps so).
      do {
        progress |= run_warp(block, warp, lanes);
      } while (current_options.warps_run_ahead && release_warp(block, warp));
    }
    for (size_t w = 0; w < warps; ++w) progress |= release_warp(block, w);
    progress |= release_block(block);
    if (std::all_of(block.threads.begin(), block.threads.end(),
                    [](const ThreadState& t) { return t.state == State::kDone; })) {
      return;
    }
    if (!progress) {
      fail(where(block) + ": deadlock (threads wait at __syncthreads and at warp operations)");
    }
  }
}

bool valid(dim3 grid, dim3 block) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  return threads >= 1 && threads <= 1024 && block.x >= 1 && block.y >= 1 && block.z >= 1 &&
         block.z <= 64 && grid.x >= 1 && grid.x <= 0x7FFFFFFFu && grid.y >= 1 && grid.y <= 65535 &&
         grid.z >= 1 && grid.z <= 65535;
}

}  // namespace

const uint3& thread_index() { return current_thread().index; }
const uint3& block_index() {
  current_thread();
  return running->index;
}
const dim3& block_dim() {
  current_thread();
  return running->dim;
}
const dim3& grid_dim() {
  current_thread();
  return running->grid;
}

void syncthreads() { yield(State::kAtBlockBarrier); }

void check_full_mask(unsigned mask) {
  if (mask != 0xFFFFFFFFu)
    fail("a warp operation with a partial mask (the kernels use full warps)");
}

void warp_exchange(const char* operation, const void* value, size_t bytes,
                   const std::function<void(const void*)>& read) {
  ThreadState& t = current_thread();
  if (bytes > kLaneBytes) fail("a warp operation's value is larger than a lane's slot");
  Warp& warp = running->warps[static_cast<size_t>(t.rank / 32)];
  std::memcpy(warp.slots[t.rank % 32], value, bytes);
  warp.operations[t.rank % 32] = operation;
  yield(State::kAtWarpBarrier);  // every lane has written
  for (const char* other : warp.operations) {
    if (std::strcmp(other, operation) != 0) {
      fail(where(*running) + ": lanes of a warp met in " + operation + " and " + other);
    }
  }
  read(warp.slots);
  yield(State::kAtWarpBarrier);  // every lane has read: the slots may be written again
}

namespace {
float bf16_at(uint32_t pair, int half) {
  __nv_bfloat16 h{static_cast<uint16_t>(half == 0 ? pair & 0xFFFFu : pair >> 16)};
  return __bfloat162float(h);
}
struct MmaOperands {
  uint32_t a[4];
  uint32_t b[2];
};
}  // namespace

void mma_m16n8k16_bf16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  MmaOperands mine{};
  std::copy(a, a + 4, mine.a);
  std::copy(b, b + 2, mine.b);
  const int lane = current_thread().rank % 32, group = lane / 4, in_group = lane % 4;
  warp_exchange("mma.sync", &mine, sizeof mine, [&](const void* all) {
    const auto lane_operands = [&](int l) {
      MmaOperands o;
      std::memcpy(&o, static_cast<const unsigned char*>(all) + kLaneBytes * l, sizeof o);
      return o;
    };
    // A [16, 16] row-major: lane 4 (row % 8) + (k % 8) / 2 holds (row, k) in register
    // (row >= 8) + 2 (k >= 8), half k % 2. B [16, 8]: lane 4 n + (k % 8) / 2, register k >= 8.
    const auto a_at = [&](int row, int k) {
      return bf16_at(lane_operands(4 * (row % 8) + (k % 8) / 2).a[(row >= 8) + 2 * (k >= 8)],
                     k % 2);
    };
    const auto b_at = [&](int k, int n) {
      return bf16_at(lane_operands(4 * n + (k % 8) / 2).b[k >= 8], k % 2);
    };
    for (int i = 0; i < 4; ++i) {
      const int row = group + 8 * (i / 2), col = 2 * in_group + i % 2;
      double sum = c[i];
      for (int k = 0; k < 16; ++k) sum += static_cast<double>(a_at(row, k)) * b_at(k, col);
      c[i] = static_cast<float>(sum);
    }
  });
}

void ldmatrix_x4_trans(uint32_t (&a)[4], const void* row) {
  if (reinterpret_cast<uintptr_t>(row) % 16 != 0)
    fail("ldmatrix: a row address not 16-byte aligned");
  const int lane = current_thread().rank % 32;
  warp_exchange("ldmatrix", &row, sizeof row, [&](const void* all) {
    const auto row_of = [&](int l) {
      const void* p;
      std::memcpy(&p, static_cast<const unsigned char*>(all) + kLaneBytes * l, sizeof p);
      return static_cast<const uint16_t*>(p);
    };
    // Transposed: lane l holds column l / 4 of rows 2 (l % 4) and 2 (l % 4) + 1 of each matrix.
    for (int m = 0; m < 4; ++m) {
      const uint16_t lo = row_of(8 * m + 2 * (lane % 4))[lane / 4];
      const uint16_t hi = row_of(8 * m + 2 * (lane % 4) + 1)[lane / 4];
      a[m] = static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16;
    }
  });
}

void cp_async(void* shared, const void* global, size_t bytes) {
  if (reinterpret_cast<uintptr_t>(shared) % bytes != 0 ||
      reinterpret_cast<uintptr_t>(global) % bytes != 0) {
    fail("cp.async: an address not aligned to the copy's size");
  }
  Copy copy{shared, global, bytes, 0};
  if (current_options.copies == CopyLanding::kAtIssue) {
    land(copy);
  } else {
    current_thread().copies.push_back(copy);
  }
}

void cp_async_commit() {
  ThreadState& t = current_thread();
  ++t.committed;
  for (Copy& copy : t.copies) {
    if (copy.group == 0) copy.group = t.committed;
  }
}

void cp_async_wait(int pending_groups_left) {
  ThreadState& t = current_thread();
  const int landed_through = t.committed - pending_groups_left;
  std::vector<Copy> left;
  for (Copy& copy : t.copies) {
    if (copy.group != 0 && copy.group <= landed_through) {
      land(copy);
    } else {
      left.push_back(copy);
    }
  }
  t.copies.swap(left);
}

void set_options(const Options& options) { current_options = options; }
const Options& options() { return current_options; }

void launch(const std::function<void()>& body, dim3 grid, dim3 block_dim, size_t shared_bytes,
            const void*) {
  if (!valid(grid, block_dim) || shared_bytes > 227 * 1024) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (running != nullptr) fail("a kernel launched from a kernel");
  Block block;
  block.body = &body;
  block.dim = block_dim;
  block.grid = grid;
  const size_t threads = size_t{block_dim.x} * block_dim.y * block_dim.z;
  block.threads.resize(threads);
  block.warps.resize((threads + 31) / 32);
  std::mt19937 random(current_options.seed);
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  running = &block;
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t linear = current_options.blocks_reversed ? blocks - 1 - b : b;
    block.index = {static_cast<unsigned>(linear % grid.x),
                   static_cast<unsigned>(linear / grid.x % grid.y),
                   static_cast<unsigned>(linear / (uint64_t{grid.x} * grid.y))};
    run_block(block, random);
  }
  running = nullptr;
}

}  // namespace cuda_emulation

void __trap() { cuda_emulation::fail("__trap (a kernel launched where it cannot run)"); }

cudaError_t cudaGetLastError() {
  const cudaError_t error = cuda_emulation::last_error;
  cuda_emulation::last_error = cudaSuccess;
  return error;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int) {
  if (attribute != cudaDevAttrMultiProcessorCount) return cudaErrorInvalidValue;
  *value = cuda_emulation::options().multiprocessors;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
  }
  return "unknown error";
}

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  *pointer = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  return *pointer != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* pointer) {
  std::free(pointer);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* to, const void* from, size_t bytes, cudaMemcpyKind) {
  std::memcpy(to, from, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(to, from, bytes, kind);
}

struct CUevent_st {
  std::chrono::steady_clock::time_point at;
};
cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st{};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  event->at = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}
