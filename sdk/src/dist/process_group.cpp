#include "llm/dist/process_group.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef LLM_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef LLM_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "llm/error.hpp"

namespace llm {
namespace {

// LibTorch 2.x split the collective implementations (Backend) from the dispatching ProcessGroup;
// 1.13's ProcessGroupGloo/NCCL are ProcessGroups themselves. Both expose allreduce and Work::wait.
#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

std::string first_line(const std::string& text) {
  const auto end = text.find('\n');
  return text.substr(0, std::min<size_t>(end, 400));
}

std::string error_text(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    return first_line(c10->what_without_backtrace());
  }
  return first_line(e.what());
}

std::string endpoint(const LaunchInfo& launch) {
  return launch.master_addr + ":" + std::to_string(launch.master_port);
}

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

std::string seconds_text(std::chrono::milliseconds d) {
  std::ostringstream s;
  s << seconds(d) << " s";
  return s.str();
}

c10::intrusive_ptr<c10d::TCPStore> open_store(const LaunchInfo& launch,
                                              std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(launch.master_port);
  options.isServer = launch.rank == 0;
  options.numWorkers = launch.world_size;
  options.waitWorkers = false;  // we wait ourselves, to name the ranks that never came
  options.timeout = timeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(launch.master_addr, options);
  } catch (const std::exception& e) {
    throw UserError(
        "rendezvous: rank " + std::to_string(launch.rank) +
        (launch.rank == 0 ? " could not listen on " : " could not reach the master at ") +
        endpoint(launch) + " within " + seconds_text(timeout) +
        " (--master_addr/--master_port, MASTER_ADDR/MASTER_PORT): " + error_text(e));
  }
}

// Each rank announces itself, then waits for the others; on timeout the message lists who is
// missing.
void wait_for_all_ranks(c10d::Store& store, const LaunchInfo& launch,
                        std::chrono::milliseconds timeout) {
  auto key = [](int r) { return "llmhost/arrived/" + std::to_string(r); };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<int> missing;
  try {
    store.set(key(launch.rank), std::vector<uint8_t>{1});
    for (int r = 0; r < launch.world_size; ++r) missing.push_back(r);
    while (true) {
      missing.erase(std::remove_if(missing.begin(), missing.end(),
                                   [&](int r) { return store.check({key(r)}); }),
                    missing.end());
      if (missing.empty()) return;
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (const std::exception& e) {
    throw UserError("rendezvous at " + endpoint(launch) + ": rank " + std::to_string(launch.rank) +
                    " lost the master: " + error_text(e));
  }
  std::string ranks;
  for (const int r : missing) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  throw UserError("rendezvous at " + endpoint(launch) + " timed out after " +
                  seconds_text(timeout) + ": rank(s) " + ranks + " of world size " +
                  std::to_string(launch.world_size) + " never arrived");
}

#ifdef LLM_WITH_GLOO
std::shared_ptr<::gloo::transport::Device> gloo_device(const LaunchInfo& launch) {
  if (const auto iface = process_environment()("GLOO_SOCKET_IFNAME")) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(*iface);
  }
  const bool loopback = launch.master_addr == "127.0.0.1" || launch.master_addr == "localhost" ||
                        launch.master_addr == "::1";
  return loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                  : c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

}  // namespace

struct ProcessGroup::Impl {
  LaunchInfo launch;
  torch::Device device{torch::kCPU};
  std::chrono::milliseconds timeout{0};
  std::string backend;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<CollectiveGroup> group;
};

bool process_group_backend_available(const torch::Device& device) {
#ifdef LLM_WITH_NCCL
  if (device.is_cuda()) return true;
#endif
#ifdef LLM_WITH_GLOO
  if (device.is_cpu()) return true;
#endif
  (void)device;
  return false;
}

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const LaunchInfo& launch,
                                                    const torch::Device& device,
                                                    std::chrono::milliseconds timeout) {
  if (!process_group_backend_available(device)) {
    throw UserError(std::string("--device ") + device.str() + ": this LibTorch build has no " +
                    (device.is_cuda() ? "NCCL" : "Gloo") + " process group for data parallel runs");
  }
  auto impl = std::make_unique<Impl>();
  impl->launch = launch;
  impl->device = device;
  impl->timeout = timeout;
  impl->store = open_store(launch, timeout);
  wait_for_all_ranks(*impl->store, launch, timeout);
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("llmhost/pg", impl->store);
  try {
#ifdef LLM_WITH_NCCL
    if (device.is_cuda()) {
      c10::cuda::set_device(device.index());
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, launch.rank,
                                                                launch.world_size, options);
      impl->backend = "nccl";
    }
#endif
#ifdef LLM_WITH_GLOO
    if (device.is_cpu()) {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      options->devices.push_back(gloo_device(launch));
      impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, launch.rank,
                                                                launch.world_size, options);
      impl->backend = "gloo";
    }
#endif
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(launch.rank) +
                             ": creating the process group at " + endpoint(launch) +
                             " failed: " + error_text(e));
  }
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const { return impl_->launch.rank; }
int ProcessGroup::world_size() const { return impl_->launch.world_size; }
std::string ProcessGroup::backend() const { return impl_->backend; }
torch::Device ProcessGroup::device() const { return impl_->device; }

void ProcessGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors, const char* what) {
  try {
    c10d::AllreduceOptions options;
    options.timeout = impl_->timeout;
    auto work = impl_->group->allreduce(tensors, options);
    if (!work->wait(impl_->timeout)) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(rank()) + ": " + what +
                             " failed: another rank exited or did not answer within " +
                             seconds_text(impl_->timeout) + " (" + error_text(e) + ")");
  }
}

void ProcessGroup::barrier(const char* what) {
  std::vector<torch::Tensor> token{torch::ones({1}, torch::TensorOptions().device(impl_->device))};
  all_reduce_sum(token, what);
}

}  // namespace llm
