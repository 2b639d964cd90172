// --task prepare: raw instruction data -> tokenised train/test splits (sdk/include/llm/train/
// README.md describes the format), split like lit-gpt's random_split with a seeded generator.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <ostream>

#include "llm/atomic_file.hpp"
#include "llm/error.hpp"
#include "llm/model_config.hpp"
#include "llm/tokenizer.hpp"
#include "llm/train/prepared_data.hpp"
#include "llm/train/prompt.hpp"
#include "output_path.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::prepare_task {
namespace {

namespace fs = std::filesystem;

void declare(po::options_description& o) {
  add_checkpoint_option(o);
  o.add_options()  //
      ("data_file", po::value<std::string>()->required(),
       "raw dataset file (Dolly JSONL, Alpaca JSON)")                                           //
      ("destination_dir", po::value<std::string>()->required(), "where the prepared set goes")  //
      ("test_split_fraction", po::value<double>()->default_value(0.1),
       "fraction held out for validation")                                               //
      ("seed", po::value<int64_t>()->default_value(42), "seed of the train/test split")  //
      ("max_seq_length", po::value<int64_t>()->default_value(0),
       "truncate samples to this many tokens (0: the model's max_position_embeddings)")  //
      ("mask_inputs", po::value<bool>()->default_value(true)->implicit_value(true),
       "leave prompt tokens out of the loss")  //
      ("skip_bad_records", po::value<bool>()->default_value(false)->implicit_value(true),
       "skip (and count) corrupt records instead of stopping at the first");
}

// torch.utils.data.random_split(data, [1 - f, f], generator=torch.Generator().manual_seed(seed)):
// floor each fraction, hand the remainder out round-robin, then cut one randperm.
std::pair<std::vector<int64_t>, std::vector<int64_t>> random_split(int64_t n, double test_fraction,
                                                                   int64_t seed) {
  int64_t lengths[2] = {static_cast<int64_t>(std::floor(n * (1.0 - test_fraction))),
                        static_cast<int64_t>(std::floor(n * test_fraction))};
  const int64_t remainder = n - lengths[0] - lengths[1];
  for (int64_t i = 0; i < remainder; ++i) lengths[i % 2] += 1;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  const auto perm = torch::randperm(n, generator, torch::kInt64);
  const auto* p = perm.data_ptr<int64_t>();
  return {std::vector<int64_t>(p, p + lengths[0]), std::vector<int64_t>(p + lengths[0], p + n)};
}

struct SplitStats {
  int64_t tokens = 0;
  int64_t truncated = 0;
};

llm::PreparedSplit encode_split(const std::vector<llm::InstructionExample>& examples,
                                const std::vector<int64_t>& indices,
                                const llm::Tokenizer& tokenizer, int64_t max_seq_length,
                                SplitStats& stats) {
  std::vector<std::vector<int64_t>> ids;
  std::vector<int64_t> prompt_lengths;
  for (const auto index : indices) {
    auto encoded = llm::encode_example(tokenizer, examples[index], max_seq_length);
    if (static_cast<int64_t>(encoded.ids.size()) == max_seq_length) ++stats.truncated;
    stats.tokens += static_cast<int64_t>(encoded.ids.size());
    ids.push_back(std::move(encoded.ids));
    prompt_lengths.push_back(encoded.prompt_length);
  }
  std::vector<int64_t> source_index;
  for (const auto index : indices) source_index.push_back(examples[index].source_line);
  return llm::PreparedSplit::from_samples(ids, prompt_lengths, source_index);
}

int run(TaskContext& ctx) {
  const auto dataset = ctx.registry().dataset(ctx.plugin(/*required=*/true));
  const fs::path data_file = ctx.get<std::string>("data_file");
  const fs::path checkpoint_dir = ctx.get<std::string>("checkpoint_dir");
  const fs::path destination = ctx.get<std::string>("destination_dir");
  const double test_fraction = ctx.get<double>("test_split_fraction");
  if (!(test_fraction >= 0.0 && test_fraction < 1.0)) {
    throw llm::UserError("--test_split_fraction must be in [0, 1)");
  }
  if (!fs::is_regular_file(data_file)) {
    throw llm::UserError("--data_file '" + data_file.string() + "' is not a file");
  }
  int64_t max_seq_length = ctx.get<int64_t>("max_seq_length");
  if (max_seq_length < 0 || max_seq_length == 1) {
    throw llm::UserError(
        "--max_seq_length must be 0 (the model's context) or at least 2 (a token "
        "and its successor), got " +
        std::to_string(max_seq_length));
  }
  const FlagPath output{"destination_dir", destination};
  refuse_aliasing(output, {{"data_file", data_file}, {"checkpoint_dir", checkpoint_dir}});
  check_output_directory(output);
  const auto tokenizer = llm::load_tokenizer(checkpoint_dir);
  if (max_seq_length == 0) {
    max_seq_length = llm::read_model_config(checkpoint_dir).max_position_embeddings;
  }

  llm::DatasetReadOptions options;
  options.skip_bad_records = ctx.get<bool>("skip_bad_records");
  const auto read = dataset->read(data_file, options);
  if (read.examples.empty()) {
    throw llm::UserError(data_file.string() + ": no usable records (the dataset is empty)");
  }
  const auto n = static_cast<int64_t>(read.examples.size());
  const auto [train_indices, test_indices] =
      random_split(n, test_fraction, ctx.get<int64_t>("seed"));
  if (train_indices.empty())
    throw llm::UserError(data_file.string() + ": too few records to split");

  SplitStats train_stats, test_stats;
  const auto train =
      encode_split(read.examples, train_indices, *tokenizer, max_seq_length, train_stats);
  const auto test =
      encode_split(read.examples, test_indices, *tokenizer, max_seq_length, test_stats);

  // Taken only now: a run refused for its input leaves no directory behind.
  const OutputDirectoryLock held_output(output, ctx.err());
  fs::remove(destination / "manifest.json");  // written last: its presence means complete
  llm::write_prepared_split(destination / "train.safetensors", train);
  llm::write_prepared_split(destination / "test.safetensors", test);
  const bool mask_inputs = ctx.get<bool>("mask_inputs");
  const llm::Json manifest{
      {"format", "llmhost-prepared"},
      {"format_version", llm::kPreparedFormatVersion},
      {"dataset", dataset->name()},
      {"data_file", fs::absolute(data_file).string()},
      {"checkpoint_dir", fs::absolute(checkpoint_dir).string()},
      {"tokenizer",
       {{"kind", tokenizer->kind()},
        {"vocab_size", tokenizer->vocab_size()},
        {"bos_id", tokenizer->adds_bos() && tokenizer->bos_id() ? llm::Json(*tokenizer->bos_id())
                                                                : llm::Json(nullptr)},
        {"eos_id", tokenizer->eos_id() ? llm::Json(*tokenizer->eos_id()) : llm::Json(nullptr)}}},
      {"template", llm::kAlpacaTemplateName},
      {"mask_inputs", mask_inputs},
      {"max_seq_length", max_seq_length},
      {"test_split_fraction", test_fraction},
      {"seed", ctx.get<int64_t>("seed")},
      {"counts",
       {{"records", n + read.skipped_records},
        {"skipped_records", read.skipped_records},
        {"train", train.size()},
        {"test", test.size()},
        {"truncated", train_stats.truncated + test_stats.truncated}}},
      {"tokens", {{"train", train_stats.tokens}, {"test", test_stats.tokens}}}};
  llm::write_file_atomic(destination / "manifest.json", manifest.dump(2) + "\n");

  if (ctx.json_output()) {
    ctx.out() << manifest.dump() << "\n";
  } else {
    ctx.out() << "prepared " << train.size() << " train / " << test.size() << " test samples ("
              << train_stats.tokens + test_stats.tokens << " tokens, "
              << manifest["counts"]["truncated"] << " truncated to " << max_seq_length << ", "
              << read.skipped_records << " bad records skipped) in " << destination.string()
              << "\n";
  }
  return llm::kExitOk;
}

const bool registered = register_task(
    {"prepare", "tokenise an instruction dataset (--plugin dolly|alpaca) into train/test splits",
     declare, run});

}  // namespace
}  // namespace llmhost::prepare_task
