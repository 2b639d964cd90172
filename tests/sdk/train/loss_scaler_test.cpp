// Dynamic loss scaling: GradScaler's rules on their own, then inside the trainer (fp32 on the CPU
// with injected infs: LibTorch's CPU kernels lack fp16 matmul, and the scaler's decisions do not
// depend on the dtype that produced the gradients).
#include "llm/train/loss_scaler.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <limits>
#include <sstream>

#include "llm/error.hpp"
#include "llm/json_file.hpp"
#include "llm/tokenizer.hpp"
#include "llm/train/prompt.hpp"
#include "llm/train/trainer.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(LossScaler, StartsAt2To16AndUnscalesFiniteGradientsExactly) {
  llm::LossScaler scaler;
  EXPECT_EQ(scaler.scale(), 65536.0);
  auto g = torch::tensor({65536.0f, -3.0f * 65536.0f, 0.5f});
  EXPECT_TRUE(scaler.unscale({g}));
  // Dividing by a power of two is exact.
  EXPECT_TRUE(torch::equal(g, torch::tensor({1.0f, -3.0f, 0.5f / 65536.0f})));
}

TEST(LossScaler, InfOrNanGradientHalvesTheScaleAndCountsASkippedStep) {
  llm::LossScalerSettings settings;
  settings.growth_interval = 3;
  llm::LossScaler scaler(settings);
  for (const double bad : {kInf, -kInf, std::nan("")}) {
    const double before = scaler.scale();
    auto clean = torch::ones({4});
    auto poisoned = torch::ones({3});
    poisoned[1] = bad;
    EXPECT_FALSE(scaler.unscale({clean, poisoned})) << bad;
    scaler.update(false);
    EXPECT_EQ(scaler.scale(), before / 2) << bad;
    EXPECT_EQ(scaler.clean_steps_in_a_row(), 0);
  }
  EXPECT_EQ(scaler.skipped_steps(), 3);
}

TEST(LossScaler, DoublesAfterGrowthIntervalCleanStepsAndAnOverflowResetsTheCount) {
  llm::LossScalerSettings settings;
  settings.initial_scale = 1024;
  settings.growth_interval = 2000;
  llm::LossScaler scaler(settings);
  for (int i = 0; i < 1999; ++i) scaler.update(true);
  EXPECT_EQ(scaler.scale(), 1024);
  scaler.update(true);  // the 2000th clean step
  EXPECT_EQ(scaler.scale(), 2048);
  EXPECT_EQ(scaler.clean_steps_in_a_row(), 0);
  for (int i = 0; i < 1999; ++i) scaler.update(true);
  scaler.update(false);  // one overflow before the 2000th: back off, start counting again
  EXPECT_EQ(scaler.scale(), 1024);
  for (int i = 0; i < 1999; ++i) scaler.update(true);
  EXPECT_EQ(scaler.scale(), 1024);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 2048);
  EXPECT_EQ(scaler.skipped_steps(), 1);
}

TEST(LossScaler, StateRoundTripsAndBadStateIsAUserError) {
  llm::LossScalerSettings settings;
  settings.growth_interval = 4;
  llm::LossScaler a(settings);
  a.update(false);
  a.update(true);
  a.update(true);
  llm::LossScaler b(settings);
  b.load_state(llm::Json::parse(a.state().dump()), "state.json");
  EXPECT_EQ(b.scale(), a.scale());
  EXPECT_EQ(b.skipped_steps(), 1);
  EXPECT_EQ(b.clean_steps_in_a_row(), 2);
  // Two more clean steps grow both the same way.
  for (auto* s : {&a, &b}) {
    s->update(true);
    s->update(true);
  }
  EXPECT_EQ(a.scale(), 65536.0);
  EXPECT_EQ(b.scale(), a.scale());
  const auto message = llm::test::user_error_of([&] {
    b.load_state(llm::Json{{"scale", -1}, {"growth_tracker", 0}, {"skipped_steps", 0}},
                 "x/trainer_state.json");
  });
  EXPECT_NE(message.find("x/trainer_state.json"), std::string::npos) << message;
  llm::test::user_error_of([&] { b.load_state(llm::Json(nullptr), "y"); });
}

// --- inside the trainer, on the trained tiny model and 40 Dolly samples (as trainer_test.cpp) ---

const char* kModel = "tiny-pythia-trained";

const llm::PreparedDataset& prepared() {
  static const llm::PreparedDataset data = [] {
    llmhost::PluginRegistry registry;
    registry.load_directories({llm::test::plugin_dir()});
    const auto examples =
        registry.dataset("dolly")->read(llm::test::data_dir() / "datasets/dolly-sample.jsonl", {});
    const auto tokenizer = llm::load_tokenizer(llm::test::data_dir() / kModel);
    std::vector<std::vector<int64_t>> ids;
    std::vector<int64_t> prompts, sources;
    for (int64_t i = 0; i < 40; ++i) {
      auto encoded = llm::encode_example(*tokenizer, examples.examples[i], 256);
      ids.push_back(encoded.ids);
      prompts.push_back(encoded.prompt_length);
      sources.push_back(i);
    }
    llm::PreparedDataset d;
    d.manifest = llm::Json{{"mask_inputs", true}, {"max_seq_length", 256}};
    d.train = llm::PreparedSplit::from_samples(ids, prompts, sources);
    d.test = llm::PreparedSplit::from_samples({}, {}, {});
    return d;
  }();
  return data;
}

struct Run {
  llmhost::PluginRegistry registry;
  llmhost::LoadedModel model;
  std::vector<std::pair<std::string, torch::Tensor>> trainable;
  std::shared_ptr<llm::Adapter> lora;
  std::vector<std::vector<torch::Tensor>> params_at_step;  // as each step found them
  double final_scale = 0;
  int64_t final_skipped = 0;
};

std::unique_ptr<Run> fresh_run() {
  auto run = std::make_unique<Run>();
  run->registry.load_directories({llm::test::plugin_dir()});
  run->model = llmhost::load_model(run->registry, llm::test::data_dir() / kModel, torch::kCPU,
                                   torch::kFloat, false);
  run->lora = run->registry.adapter("lora");
  torch::manual_seed(7);
  run->lora->attach(*run->model.model, llm::Json{{"lora_dropout", 0.05}});
  torch::NoGradGuard no_grad;
  for (const auto& item : run->model.model->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    run->trainable.emplace_back(item.key(), item.value());
    // B = 0 would make the first steps' A gradients zero; give both real gradients.
    if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0.0, 0.02);
  }
  return run;
}

llm::TrainingSettings scaled_settings() {
  llm::TrainingSettings s;
  s.learning_rate = 1e-2;
  s.batch_size = 4;
  s.micro_batch_size = 2;
  s.max_steps = 6;
  s.warmup_steps = 1;
  s.eval_interval = 0;
  s.eval_iters = 0;
  s.save_interval = 1;
  s.seed = 3;
  s.dynamic_loss_scaling = true;
  s.loss_scaler.initial_scale = 1024;
  s.loss_scaler.growth_interval = 2;
  return s;
}

// Poisons one gradient element with inf at the given steps, as an fp16 overflow would.
void train(Run& run, const llm::TrainingSettings& settings, const fs::path& out, bool resume,
           std::vector<int64_t> inf_steps) {
  std::ostringstream log;
  llm::Trainer trainer(
      *run.model.model, run.trainable, prepared(), settings, out,
      [&](const fs::path& dir) { run.lora->save(*run.model.model, dir); }, log);
  trainer.set_gradient_hook([&](int64_t step, const std::vector<torch::Tensor>& grads) {
    std::vector<torch::Tensor> copies;
    for (const auto& [name, p] : run.trainable) copies.push_back(p.detach().clone());
    run.params_at_step.push_back(std::move(copies));
    if (std::find(inf_steps.begin(), inf_steps.end(), step) != inf_steps.end()) {
      torch::NoGradGuard no_grad;
      grads[0].view({-1})[0].fill_(kInf);
    }
  });
  trainer.run(resume);
  run.final_scale = trainer.loss_scaler().scale();
  run.final_skipped = trainer.loss_scaler().skipped_steps();
}

bool same_parameters(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

TEST(TrainerLossScaling, WithoutOverflowScalingByAPowerOfTwoLeavesTheTrajectoryBitwiseEqual) {
  // Multiplying the loss by 2^k scales every gradient exactly (each fp32 operation of backward is
  // linear in the incoming gradient, and rounding commutes with a power-of-two factor away from
  // overflow and subnormals); dividing by 2^k is exact again.
  llm::test::TempDir plain_dir, scaled_dir;
  auto plain = fresh_run();
  auto scaled = fresh_run();
  auto settings = scaled_settings();
  settings.max_steps = 3;
  settings.save_interval = 0;
  train(*scaled, settings, scaled_dir.path(), false, {});
  settings.dynamic_loss_scaling = false;
  train(*plain, settings, plain_dir.path(), false, {});
  ASSERT_EQ(plain->params_at_step.size(), 3u);
  for (size_t step = 1; step < 3; ++step) {
    EXPECT_TRUE(same_parameters(plain->params_at_step[step], scaled->params_at_step[step]))
        << "after step " << step;
  }
  EXPECT_FALSE(same_parameters(plain->params_at_step[0], plain->params_at_step[1]));
}

TEST(TrainerLossScaling, AnOverflowSkipsTheStepHalvesTheScaleAndMetricsRecordIt) {
  llm::test::TempDir out;
  auto run = fresh_run();
  train(*run, scaled_settings(), out.path(), false, {3});
  ASSERT_EQ(run->params_at_step.size(), 6u);
  // Step 3 was skipped: step 4 found the parameters step 3 found.
  EXPECT_TRUE(same_parameters(run->params_at_step[2], run->params_at_step[3]));
  EXPECT_FALSE(same_parameters(run->params_at_step[1], run->params_at_step[2]));
  EXPECT_FALSE(same_parameters(run->params_at_step[3], run->params_at_step[4]));
  for (const auto& tensors : run->params_at_step) {
    for (const auto& p : tensors) ASSERT_TRUE(torch::isfinite(p).all().item<bool>());
  }
  // 1024: steps 1, 2 clean -> 2048; step 3 inf -> 1024; steps 4, 5 -> 2048; step 6 clean.
  EXPECT_EQ(run->final_scale, 2048);
  EXPECT_EQ(run->final_skipped, 1);
  std::ifstream jsonl(out.path() / "metrics.jsonl");
  std::vector<double> scales;
  std::vector<int64_t> skipped;
  for (std::string line; std::getline(jsonl, line);) {
    const auto row = llm::Json::parse(line);
    if (!row.contains("loss_scale")) continue;
    scales.push_back(row["loss_scale"].get<double>());
    skipped.push_back(row["skipped_steps"].get<int64_t>());
  }
  EXPECT_EQ(scales, (std::vector<double>{1024, 2048, 1024, 1024, 2048, 2048}));
  EXPECT_EQ(skipped, (std::vector<int64_t>{0, 0, 1, 1, 1, 1}));
}

TEST(TrainerLossScaling, ResumeAfterAnOverflowContinuesExactly) {
  llm::test::TempDir whole_dir, resumed_dir;
  auto whole = fresh_run();
  train(*whole, scaled_settings(), whole_dir.path(), false, {2, 5});

  auto first = fresh_run();
  auto stopped = scaled_settings();
  stopped.stop_after_step = 3;  // after the first overflow, mid growth interval
  train(*first, stopped, resumed_dir.path(), false, {2, 5});
  const auto state = llm::read_json_file(resumed_dir.path() / "step-000003" / "trainer_state.json");
  EXPECT_EQ(state["loss_scaler"]["skipped_steps"], 1);
  EXPECT_EQ(state["loss_scaler"]["scale"], 512.0);
  EXPECT_EQ(state["loss_scaler"]["growth_tracker"], 1);

  auto second = fresh_run();
  train(*second, scaled_settings(), resumed_dir.path(), true, {2, 5});
  EXPECT_EQ(second->final_scale, whole->final_scale);
  EXPECT_EQ(second->final_skipped, 2);
  // Same parameters at the end (AdamW's step count excludes the skipped steps on both sides).
  double worst = 0;
  for (size_t i = 0; i < whole->trainable.size(); ++i) {
    worst = std::max(
        worst,
        (whole->trainable[i].second - second->trainable[i].second).abs().max().item<double>());
  }
  EXPECT_LE(worst, 1e-6);
}

}  // namespace
