// Out-of-line virtual destructors ("key functions"): each interface's vtable and typeinfo live
// once, in libllmsdk, so dynamic_cast and catch work across plugin boundaries.
#include "llm/adapter.hpp"
#include "llm/dataset.hpp"
#include "llm/error.hpp"
#include "llm/eval_task.hpp"
#include "llm/model.hpp"
#include "llm/plugin.hpp"
#include "llm/tokenizer.hpp"

namespace llm {

UserError::UserError(const std::string& message) : std::runtime_error(message) {}
UserError::~UserError() = default;

Registrar::~Registrar() = default;
ModelFamily::~ModelFamily() = default;
Dataset::~Dataset() = default;
Adapter::~Adapter() = default;
std::vector<AdapterOption> Adapter::options() const { return {}; }
std::string Adapter::peft_type() const { return ""; }
EvalTask::~EvalTask() = default;
LinearAdapter::~LinearAdapter() = default;
CausalLM::~CausalLM() = default;
Tokenizer::~Tokenizer() = default;

const char* plugin_kind_name(PluginKind kind) {
  switch (kind) {
    case PluginKind::kModel:
      return "model";
    case PluginKind::kDataset:
      return "dataset";
    case PluginKind::kAdapter:
      return "adapter";
    case PluginKind::kEvalTask:
      return "eval_task";
  }
  return "unknown";
}

}  // namespace llm
