// Loader test plugin: its registration function throws.
#include <stdexcept>

#include "llm/plugin.hpp"

namespace {
void register_throws(llm::Registrar&) { throw std::runtime_error("cannot find my lookup table"); }
}  // namespace

LLMHOST_PLUGIN(kEvalTask, "throws", "0.0.1", "loader test: throws while registering",
               register_throws)
