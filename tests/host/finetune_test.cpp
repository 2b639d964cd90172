#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <sstream>

#include "llm/json_file.hpp"
#include "llm/safetensors.hpp"
#include "support/test_support.hpp"
#include "support/xml_parse.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::run_llmhost;

fs::path model_dir() { return llm::test::data_dir() / "tiny-pythia-trained"; }

TEST(FinetuneTask, MissingDataDirExitsTwoNamingTheFlag) {
  llm::test::TempDir out;
  const auto result = run_llmhost(
      {"--task", "finetune", "--plugin", "lora", "--data_dir", (out.path() / "nope").string(),
       "--checkpoint_dir", model_dir().string(), "--out_dir", (out.path() / "run").string()});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--data_dir"), std::string::npos) << result.err;
}

// prepare -> finetune through the CLI on the untrained tiny model (tests/data/tiny-pythia: 2
// layers, hidden 64, random weights) and the Dolly sample (360 train / 40 test records), run once
// and shared by the tests below. The trained tiny model cannot show learning: it already fits the
// sample (validation loss 0.0006).
struct LearningRun {
  llm::test::TempDir dir;
  llm::test::CommandResult prepare, finetune;
  llm::Json summary;
  fs::path out() const { return dir.path() / "run"; }
};

// 20 steps of 8 samples at lr 1e-2, LoRA r 8 on q, v, projection, MLP and head (dropout 0.05).
const std::vector<std::string> kLearningFlags = {
    "--learning_rate", "1e-2", "--batch_size",    "8",    "--micro_batch_size", "8",
    "--max_steps",     "20",   "--warmup_steps",  "2",    "--lora_projection",  "true",
    "--lora_mlp",      "true", "--lora_head",     "true", "--eval_interval",    "0",
    "--eval_iters",    "5",    "--save_interval", "0"};

// TempDir can be neither copied nor moved: the shared run is filled in place, once.
void run_learning(LearningRun& r) {
  const fs::path model = llm::test::data_dir() / "tiny-pythia";
  const auto data = r.dir.path() / "data";
  r.prepare = run_llmhost({"--task", "prepare", "--plugin", "dolly", "--data_file",
                           (llm::test::data_dir() / "datasets/dolly-sample.jsonl").string(),
                           "--checkpoint_dir", model.string(), "--destination_dir", data.string()});
  if (r.prepare.exit_code != 0) return;
  std::vector<std::string> args = {
      "--task",     "finetune",       "--plugin",         "lora",
      "--data_dir", data.string(),    "--checkpoint_dir", model.string(),
      "--out_dir",  r.out().string(), "--format",         "json"};
  args.insert(args.end(), kLearningFlags.begin(), kLearningFlags.end());
  r.finetune = run_llmhost(args);
  if (r.finetune.exit_code == 0) r.summary = llm::Json::parse(r.finetune.out);
}

const LearningRun& learning_run() {
  static LearningRun run;
  static const bool done = (run_learning(run), true);
  (void)done;
  return run;
}

TEST(FinetuneTask, LoraOnTheUntrainedTinyModelHalvesDollyValidationLoss) {
  const auto& run = learning_run();
  ASSERT_EQ(run.prepare.exit_code, 0) << run.prepare.err;
  ASSERT_EQ(run.finetune.exit_code, 0) << run.finetune.err;
  const double before = run.summary.at("initial_val_loss").get<double>();
  const double after = run.summary.at("final_val_loss").get<double>();
  // Measured with kLearningFlags: 8.42 -> 3.39 (-60%).
  EXPECT_LT(after, 0.5 * before) << "val loss " << before << " -> " << after;
  EXPECT_TRUE(fs::exists(run.out() / "final" / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(run.out() / "metrics.csv"));
  EXPECT_NE(run.finetune.err.find("tok/s"), std::string::npos) << "progress line";
  EXPECT_NE(run.finetune.err.find("ETA"), std::string::npos) << "progress line";
}

// --packing through the real binary: the first step (before any update) sees the padded run's
// loss to fp32 summation order, and the packed run trains (dropout off: masks are drawn per
// tensor shape, so packed and padded runs would draw different ones).
TEST(FinetuneTask, PackingGivesThePaddedFirstStepLossAndTrains) {
  llm::test::TempDir dir;
  const fs::path model = llm::test::data_dir() / "tiny-pythia";
  const auto data = dir.path() / "data";
  const auto prepare = run_llmhost(
      {"--task", "prepare", "--plugin", "dolly", "--data_file",
       (llm::test::data_dir() / "datasets/dolly-sample.jsonl").string(), "--checkpoint_dir",
       model.string(), "--destination_dir", data.string(), "--max_seq_length", "96"});
  ASSERT_EQ(prepare.exit_code, 0) << prepare.err;
  const auto finetune = [&](const std::string& name, const std::string& packing) {
    const auto out = dir.path() / name;
    const auto result = run_llmhost({"--task",
                                     "finetune",
                                     "--plugin",
                                     "lora",
                                     "--data_dir",
                                     data.string(),
                                     "--checkpoint_dir",
                                     model.string(),
                                     "--out_dir",
                                     out.string(),
                                     "--format",
                                     "json",
                                     "--packing",
                                     packing,
                                     "--lora_dropout",
                                     "0",
                                     "--learning_rate",
                                     "1e-2",
                                     "--batch_size",
                                     "8",
                                     "--micro_batch_size",
                                     "4",
                                     "--max_steps",
                                     "6",
                                     "--warmup_steps",
                                     "1",
                                     "--eval_interval",
                                     "0",
                                     "--eval_iters",
                                     "4",
                                     "--save_interval",
                                     "0"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    std::istringstream rows(llm::test::read_file_bytes(out / "metrics.jsonl"));
    std::string first;
    for (std::string line; std::getline(rows, line);) {
      if (llm::Json::parse(line)["step"] == 1) first = line;
    }
    return std::make_pair(llm::Json::parse(result.out), llm::Json::parse(first));
  };
  const auto [padded_summary, padded_step] = finetune("padded", "false");
  const auto [packed_summary, packed_step] = finetune("packed", "true");
  const double padded_loss = padded_step.at("loss").get<double>();
  EXPECT_NEAR(packed_step.at("loss").get<double>(), padded_loss, 1e-5 * padded_loss);
  EXPECT_LT(packed_summary.at("final_val_loss").get<double>(),
            packed_summary.at("initial_val_loss").get<double>());
}

// OUT/loss.svg after the run: well-formed, its training-loss line holds every step metrics.jsonl
// logged and its validation line the initial validation.
TEST(FinetuneTask, LossSvgHoldsTheLoggedTrainingAndValidationLoss) {
  const auto& run = learning_run();
  ASSERT_EQ(run.finetune.exit_code, 0) << run.finetune.err;
  std::vector<std::pair<int64_t, double>> train, val;
  std::istringstream rows(llm::test::read_file_bytes(run.out() / "metrics.jsonl"));
  for (std::string line; std::getline(rows, line);) {
    const auto row = llm::Json::parse(line);
    if (row["loss"].is_number())
      train.emplace_back(row["step"].get<int64_t>(), row["loss"].get<double>());
    if (row["val_loss"].is_number())
      val.emplace_back(row["step"].get<int64_t>(), row["val_loss"].get<double>());
  }
  ASSERT_EQ(train.size(), 20u);
  ASSERT_EQ(val.size(), 1u);  // step 0 (--eval_interval 0)
  llm::test::XmlElement svg;
  ASSERT_NO_THROW(svg = llm::test::parse_xml(llm::test::read_file_bytes(run.out() / "loss.svg")));
  auto plotted = [&](const char* css_class) {
    std::vector<std::pair<int64_t, double>> points;
    const auto lines = svg.find_all("polyline", css_class);
    if (lines.size() != 1) return points;
    std::istringstream in(lines[0]->attribute("data-points"));
    for (std::string item; in >> item;) {
      const auto comma = item.find(',');
      points.emplace_back(std::stoll(item.substr(0, comma)), std::stod(item.substr(comma + 1)));
    }
    return points;
  };
  for (const auto& [css_class, logged] :
       {std::make_pair("train-loss", train), std::make_pair("val-loss", val)}) {
    const auto points = plotted(css_class);
    ASSERT_EQ(points.size(), logged.size()) << css_class;
    for (size_t i = 0; i < points.size(); ++i) {
      EXPECT_EQ(points[i].first, logged[i].first) << css_class << " " << i;
      EXPECT_NEAR(points[i].second, logged[i].second, 1e-7 * std::abs(logged[i].second));
    }
  }
}

// PEFT reads adapter_config.json into LoraConfig(**json): every key we write must be one PEFT
// writes itself, with the same JSON type, or older and newer PEFT versions refuse or misread it.
TEST(FinetuneTask, AdapterConfigUsesPeftKeysAndTypes) {
  const auto& run = learning_run();
  ASSERT_EQ(run.finetune.exit_code, 0) << run.finetune.err;
  const auto ours = llm::read_json_file(run.out() / "final" / "adapter_config.json");
  const auto peft = llm::read_json_file(llm::test::data_dir() /
                                        "golden/tiny-pythia-lora-adapter/adapter_config.json");
  for (const auto& [key, value] : ours.items()) {
    ASSERT_TRUE(peft.contains(key)) << key << " is not a PEFT LoraConfig field";
    if (value.is_null() || peft.at(key).is_null()) continue;
    EXPECT_EQ(value.type_name(), std::string(peft.at(key).type_name())) << key;
    if (value.is_number()) {
      EXPECT_EQ(value.is_number_integer(), peft.at(key).is_number_integer()) << key;
    }
  }
  EXPECT_EQ(ours.at("peft_type"), "LORA");
  EXPECT_EQ(ours.at("task_type"), "CAUSAL_LM");
  EXPECT_EQ(ours.at("r"), 8);
  EXPECT_EQ(ours.at("lora_alpha"), 16);
  EXPECT_EQ(ours.at("bias"), "none");
  EXPECT_EQ(ours.at("fan_in_fan_out"), false);
  EXPECT_EQ(ours.at("use_rslora"), false);
  EXPECT_EQ(ours.at("use_dora"), false);
}

// PEFT's tensor names: base_model.model.<HF module>.lora_{A,B}.weight, A [r, in], B [out, r], for
// a module whose weight exists under that name in the base checkpoint.
TEST(FinetuneTask, AdapterTensorsUseHuggingFaceModuleNamesAndShapes) {
  const auto& run = learning_run();
  ASSERT_EQ(run.finetune.exit_code, 0) << run.finetune.err;
  const llm::SafetensorsFile adapter(run.out() / "final" / "adapter_model.safetensors");
  const llm::SafetensorsFile base(llm::test::data_dir() / "tiny-pythia" / "model.safetensors");
  const std::string prefix = "base_model.model.";
  const auto config = llm::read_json_file(run.out() / "final" / "adapter_config.json");
  std::set<std::string> targets;
  for (const auto& t : config.at("target_modules")) targets.insert(t.get<std::string>());
  ASSERT_FALSE(adapter.tensors().empty());
  for (const auto& info : adapter.tensors()) {
    ASSERT_EQ(info.name.rfind(prefix, 0), 0u) << info.name;
    const bool is_a = info.name.size() > 14 &&
                      info.name.compare(info.name.size() - 14, 14, ".lora_A.weight") == 0;
    const bool is_b = info.name.size() > 14 &&
                      info.name.compare(info.name.size() - 14, 14, ".lora_B.weight") == 0;
    ASSERT_TRUE(is_a || is_b) << info.name;
    const std::string module =
        info.name.substr(prefix.size(), info.name.size() - prefix.size() - 14);
    ASSERT_TRUE(base.contains(module + ".weight")) << info.name << ": no base weight " << module;
    const auto& weight = base.info(module + ".weight").shape;  // [out, in]
    EXPECT_EQ(info.shape,
              (is_a ? std::vector<int64_t>{8, weight[1]} : std::vector<int64_t>{weight[0], 8}))
        << info.name;
    EXPECT_EQ(info.dtype, torch::kFloat) << info.name;
    EXPECT_TRUE(targets.count(module.substr(module.rfind('.') + 1)))
        << module << " is not covered by target_modules " << config.at("target_modules").dump();
  }
}

}  // namespace
