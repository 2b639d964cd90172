#pragma once
// A random-initialised model whose frozen Linear weights are NF4 on the device, built without ever
// holding the full-precision model there (nor touching it on the CPU): each layer's weight is
// drawn on the device, quantized, and dropped before the next.
#include <cstdint>
#include <filesystem>

#include "plugin_registry.hpp"

namespace llmhost_bench {

llmhost::LoadedModel load_nf4_random(const llmhost::PluginRegistry& registry,
                                     const std::filesystem::path& shape_dir,
                                     const torch::Device& device, torch::ScalarType dtype,
                                     uint64_t seed);

}  // namespace llmhost_bench
