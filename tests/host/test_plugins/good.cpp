// Loader test plugin: well-formed, registers one dataset feature "good_dataset".
#include "llm/dataset.hpp"
#include "llm/plugin.hpp"

namespace {
class GoodDataset final : public llm::Dataset {
 public:
  std::string name() const override { return "good_dataset"; }
  llm::DatasetReadResult read(const std::filesystem::path&,
                              const llm::DatasetReadOptions&) const override {
    return {};
  }
};
void register_good(llm::Registrar& registrar) {
  registrar.add_dataset(std::make_shared<GoodDataset>());
}
}  // namespace

LLMHOST_PLUGIN(kDataset, "good", "1.2.3", "loader test: a good plugin", register_good)
