#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

#include "llm/error.hpp"
#include "llm/safetensors.hpp"
#include "llm/train/adamw.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;

struct Loaded {
  llmhost::PluginRegistry registry;
  llmhost::LoadedModel model;
  std::shared_ptr<llm::Adapter> lora;
};

std::unique_ptr<Loaded> load(const std::string& checkpoint) {
  auto loaded = std::make_unique<Loaded>();
  loaded->registry.load_directories({llm::test::plugin_dir()});
  loaded->model = llmhost::load_model(loaded->registry, llm::test::data_dir() / checkpoint,
                                      torch::kCPU, torch::kFloat, false);
  loaded->lora = loaded->registry.adapter("lora");
  return loaded;
}

fs::path golden_adapter(const std::string& model) {
  return llm::test::data_dir() / "golden" / (model + "-lora-adapter");
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

class LoraParity : public ::testing::TestWithParam<std::string> {
 protected:
  torch::Tensor golden(const std::string& name) {
    const llm::SafetensorsFile file(llm::test::data_dir() / "golden" /
                                    (GetParam() + "-logits.safetensors"));
    return file.tensor(name).clone();
  }
  torch::Tensor logits(llm::CausalLM& model) {
    torch::NoGradGuard no_grad;
    return model.forward(golden("input_ids").to(torch::kInt64));
  }
};

TEST_P(LoraParity, PeftAdapterReproducesPeftLogitsWithin1e4) {
  auto loaded = load(GetParam());
  loaded->lora->load(*loaded->model.model, golden_adapter(GetParam()));
  const double diff = max_abs_diff(logits(*loaded->model.model), golden("logits_lora"));
  EXPECT_LE(diff, 1e-4);
  // The adapter changes the output: parity is not the base model's by accident.
  EXPECT_GT(max_abs_diff(golden("logits_lora"), golden("logits")), 1e-3);
}

TEST_P(LoraParity, MergedWeightsReproducePeftMergedLogitsWithin1e4) {
  auto loaded = load(GetParam());
  loaded->lora->load(*loaded->model.model, golden_adapter(GetParam()));
  loaded->lora->merge(*loaded->model.model);
  for (auto& layer : loaded->model.model->adaptable_linears()) {
    EXPECT_EQ(layer.linear->adapter(), nullptr)
        << layer.name << " still has an adapter after merge";
  }
  EXPECT_LE(max_abs_diff(logits(*loaded->model.model), golden("logits_merged")), 1e-4);
}

TEST_P(LoraParity, SaveThenLoadIsBitIdentical) {
  auto loaded = load(GetParam());
  loaded->lora->load(*loaded->model.model, golden_adapter(GetParam()));
  llm::test::TempDir out;
  loaded->lora->save(*loaded->model.model, out.path());
  const llm::SafetensorsFile original(golden_adapter(GetParam()) / "adapter_model.safetensors");
  const llm::SafetensorsFile saved(out.path() / "adapter_model.safetensors");
  ASSERT_EQ(saved.tensors().size(), original.tensors().size());
  for (const auto& info : original.tensors()) {
    ASSERT_TRUE(saved.contains(info.name)) << info.name;
    EXPECT_TRUE(torch::equal(saved.tensor(info.name), original.tensor(info.name))) << info.name;
  }
  const auto config = llm::read_json_file(out.path() / "adapter_config.json");
  const auto peft = llm::read_json_file(golden_adapter(GetParam()) / "adapter_config.json");
  for (const char* key : {"r", "lora_alpha", "target_modules", "peft_type", "bias"}) {
    EXPECT_EQ(config.at(key), peft.at(key)) << key;
  }
  // The base model's directory, for AutoPeftModelForCausalLM (PEFT writes the path it loaded).
  EXPECT_EQ(std::filesystem::path(config.at("base_model_name_or_path").get<std::string>()),
            std::filesystem::absolute(llm::test::data_dir() / GetParam()));
  // And loading our file gives the same logits again.
  auto reloaded = load(GetParam());
  reloaded->lora->load(*reloaded->model.model, out.path());
  EXPECT_TRUE(torch::equal(logits(*reloaded->model.model), logits(*loaded->model.model)));
}

INSTANTIATE_TEST_SUITE_P(BothModels, LoraParity, ::testing::Values("tiny-pythia", "tiny-llama"));

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const llm::UserError& e) {
    return e.what();
  }
  return "";
}

TEST(LoraAdapter, AdapterTargetingModulesTheModelLacksIsAUserError) {
  auto pythia = load("tiny-pythia");
  const auto message =
      error_of([&] { pythia->lora->load(*pythia->model.model, golden_adapter("tiny-llama")); });
  EXPECT_NE(message.find("match no layer"), std::string::npos) << message;
  for (auto& layer : pythia->model.model->adaptable_linears()) {
    EXPECT_EQ(layer.linear->adapter(), nullptr)
        << "a refused adapter must leave the model untouched";
  }
}

TEST(LoraAdapter, AdapterOfAnotherShapeIsAUserErrorNamingTheTensor) {
  auto trained = load("tiny-pythia-trained");  // hidden 128; the golden adapter is for hidden 64
  const auto message =
      error_of([&] { trained->lora->load(*trained->model.model, golden_adapter("tiny-pythia")); });
  EXPECT_NE(message.find("has shape"), std::string::npos) << message;
  EXPECT_NE(message.find("query_key_value.lora_A.weight"), std::string::npos) << message;
}

TEST(LoraAdapter, QueryValueOnFusedQkvTrainsOnlyTheTrueQueryAndValueRows) {
  auto loaded = load("tiny-pythia");
  auto& model = *loaded->model.model;
  torch::manual_seed(0);
  const auto trainable = loaded->lora->attach(model, llm::Json{{"lora_dropout", 0.0}});
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (size_t i = 0; i < trainable.size(); ++i) named.emplace_back(std::to_string(i), trainable[i]);
  llm::AdamWSettings settings;
  settings.weight_decay = 0.1;
  llm::AdamW optimizer(named, settings);
  const auto ids = torch::randint(0, model.config().vocab_size, {2, 16}, torch::kInt64);
  for (int step = 0; step < 3; ++step) {
    optimizer.zero_grad();
    model.forward(ids).logsumexp(-1).mean().backward();
    optimizer.step(1e-2);
  }
  llm::test::TempDir out;
  loaded->lora->save(model, out.path());
  EXPECT_EQ(llm::read_json_file(out.path() / "adapter_config.json").at("target_modules"),
            llm::Json::array({"query_key_value"}));
  const llm::SafetensorsFile saved(out.path() / "adapter_model.safetensors");
  const int64_t heads = model.config().num_heads, head_dim = model.config().head_dim;
  const auto b =
      saved.tensor("base_model.model.gpt_neox.layers.0.attention.query_key_value.lora_B.weight")
          .reshape({heads, 3, head_dim, -1});
  EXPECT_EQ(b.select(1, 1).abs().max().item<float>(), 0.f) << "key rows must stay exactly zero";
  EXPECT_GT(b.select(1, 0).abs().max().item<float>(), 0.f) << "query rows train";
  EXPECT_GT(b.select(1, 2).abs().max().item<float>(), 0.f) << "value rows train";
}

// The adapter's hand-written backward (it saves x and the dropout mask, and recomputes the dropped
// fp32 input) against the loss's own slope: along the unit gradient direction the central
// difference of the loss, with the same dropout masks on both sides (same seed), must equal the
// gradient's norm. Dropout 0.5 makes a wrong mask in backward show as an error of tens of percent;
// the fp32 loss (~5) read to ~1e-6 over a step of 2e-2 bounds the difference's own error well
// below the 1% allowed.
TEST(LoraAdapter, GradientWithDropoutIsTheSlopeOfTheLossUnderTheSameMasks) {
  auto loaded = load("tiny-llama");
  auto& model = *loaded->model.model;
  torch::manual_seed(0);
  const auto trainable = loaded->lora->attach(model, llm::Json{{"lora_dropout", 0.5}});
  {
    torch::NoGradGuard no_grad;  // B starts at zero, which would leave A without a gradient
    for (auto p : trainable) {
      if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.2);
    }
  }
  model.train();
  const auto ids = torch::randint(0, model.config().vocab_size, {2, 12}, torch::kInt64);
  const auto loss_at = [&] {
    torch::manual_seed(42);
    return model.next_token_loss(ids, ids).mean;
  };
  loss_at().backward();
  double norm2 = 0;
  for (const auto& p : trainable) norm2 += p.grad().pow(2).sum().item<double>();
  const double norm = std::sqrt(norm2);
  ASSERT_GT(norm, 0.0);
  const auto move = [&](double distance) {
    torch::NoGradGuard no_grad;
    for (auto p : trainable) p.add_(p.grad() * (distance / norm));
  };
  const double step = 1e-2;
  move(step);
  const double up = loss_at().item<double>();
  move(-2 * step);
  const double down = loss_at().item<double>();
  move(step);
  EXPECT_NEAR((up - down) / (2 * step), norm, 0.01 * norm);
}

TEST(LoraAdapter, QueryValueOnLlamaTargetsQProjAndVProjOnly) {
  auto loaded = load("tiny-llama");
  const auto trainable = loaded->lora->attach(*loaded->model.model, llm::Json::object());
  EXPECT_EQ(trainable.size(), 2u * 2u * static_cast<size_t>(loaded->model.config.num_layers));
  llm::test::TempDir out;
  loaded->lora->save(*loaded->model.model, out.path());
  EXPECT_EQ(llm::read_json_file(out.path() / "adapter_config.json").at("target_modules"),
            (llm::Json::array({"q_proj", "v_proj"})));
}

// Whether a node named like `name` is in the graph behind `t`.
bool graph_has_node(const torch::Tensor& t, const std::string& name) {
  std::vector<torch::autograd::Node*> pending{t.grad_fn().get()};
  std::unordered_set<torch::autograd::Node*> seen;
  while (!pending.empty()) {
    auto* node = pending.back();
    pending.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    if (node->name().find(name) != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) pending.push_back(edge.function.get());
  }
  return false;
}

// In bf16 training on CUDA, each Llama layer's q, k and v (LoRA on q and v) are one autograd node
// (llm::shared_input_linears, through LoraLinear::low_rank_factors). The loss is the separate
// nodes' loss exactly (the same products, the same dropout draws under the same seed), and the
// factors' gradients differ from theirs only by x's gradient summed in another order: a few bf16
// roundings (2^-8 relative each) carried through two layers, far below the O(1) error of a wrong
// mask or a missing term.
TEST(LoraAdapter, LlamaProjectionsSharingTheirInputTrainAsOneNodeCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  llmhost::PluginRegistry registry;
  registry.load_directories({llm::test::plugin_dir()});
  auto loaded = llmhost::load_model(registry, llm::test::data_dir() / "tiny-llama", torch::kCUDA,
                                    torch::kBFloat16, false);
  auto& model = *loaded.model;
  torch::manual_seed(0);
  const auto trainable = registry.adapter("lora")->attach(model, llm::Json{{"lora_dropout", 0.1}});
  {
    torch::NoGradGuard no_grad;  // B starts at zero, which would leave A without a gradient
    for (auto p : trainable) {
      if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.2);
    }
  }
  model.train();
  const auto ids =
      torch::randint(0, model.config().vocab_size, {2, 16}, torch::kInt64).to(torch::kCUDA);
  std::vector<double> losses;
  std::vector<std::vector<torch::Tensor>> grads;
  for (const char* grouped : {"1", "0"}) {
    const llm::test::ScopedEnvironmentVariable setting("LLMHOST_SHARED_INPUT_GRAD", grouped);
    for (auto p : trainable) p.mutable_grad() = torch::Tensor();
    torch::manual_seed(42);
    const auto loss = model.next_token_loss(ids, ids).mean;
    EXPECT_EQ(graph_has_node(loss, "SharedInputLinears"), std::string(grouped) == "1") << grouped;
    loss.backward();
    losses.push_back(loss.item<double>());
    grads.emplace_back();
    for (const auto& p : trainable) grads.back().push_back(p.grad().clone());
  }
  EXPECT_EQ(losses[0], losses[1]);
  for (size_t i = 0; i < trainable.size(); ++i) {
    const double norm = grads[1][i].norm().item<double>();
    ASSERT_GT(norm, 0.0) << "parameter " << i;
    EXPECT_LE((grads[0][i] - grads[1][i]).norm().item<double>(), 0.02 * norm) << "parameter " << i;
  }
}

}  // namespace
