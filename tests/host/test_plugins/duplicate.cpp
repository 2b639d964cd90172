// Loader test plugin: claims the plugin name "good", already taken by good.cpp.
#include "llm/dataset.hpp"
#include "llm/plugin.hpp"

namespace {
class OtherDataset final : public llm::Dataset {
 public:
  std::string name() const override { return "other_dataset"; }
  llm::DatasetReadResult read(const std::filesystem::path&,
                              const llm::DatasetReadOptions&) const override {
    return {};
  }
};
void register_duplicate(llm::Registrar& registrar) {
  registrar.add_dataset(std::make_shared<OtherDataset>());
}
}  // namespace

LLMHOST_PLUGIN(kDataset, "good", "9.9.9", "loader test: duplicate name", register_duplicate)
