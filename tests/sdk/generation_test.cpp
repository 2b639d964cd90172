#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/generation.hpp"
#include "sdk/nn/model_test_support.hpp"

namespace llm::test {
namespace {

std::vector<int64_t> prompt_of(int64_t length) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < length; ++i) ids.push_back(10 + i);
  return ids;
}

GenerationOptions sampled(uint64_t seed, int64_t new_tokens) {
  GenerationOptions o;
  o.max_new_tokens = new_tokens;
  o.sampling.temperature = 1.0;
  o.sampling.top_k = 50;
  o.seed = seed;
  o.stop_at_eos = false;
  return o;
}

TEST(Generate, StreamsEachNewTokenInOrderAndCountsThem) {
  auto loaded = load_test_model(data_dir() / "tiny-pythia");
  std::vector<int64_t> streamed;
  const auto result = generate(*loaded.model, prompt_of(5), sampled(1, 6),
                               [&](int64_t token) { streamed.push_back(token); });
  ASSERT_EQ(result.tokens.size(), 11u);
  EXPECT_EQ(result.new_tokens, 6);
  EXPECT_EQ(std::vector<int64_t>(result.tokens.begin() + 5, result.tokens.end()), streamed);
  EXPECT_GT(result.tokens_per_second, 0.0);
}

TEST(Generate, SameSeedRepeatsDifferentSeedDiffers) {
  auto loaded = load_test_model(data_dir() / "tiny-pythia");
  const auto a = generate(*loaded.model, prompt_of(4), sampled(42, 16)).tokens;
  const auto b = generate(*loaded.model, prompt_of(4), sampled(42, 16)).tokens;
  const auto c = generate(*loaded.model, prompt_of(4), sampled(43, 16)).tokens;
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Generate, StopsAtAnEosIdItProduces) {
  auto loaded = load_test_model(data_dir() / "tiny-pythia");
  auto options = sampled(0, 8);
  options.sampling.temperature = 0;
  const auto free_run = generate(*loaded.model, prompt_of(4), options);
  options.stop_at_eos = true;
  options.eos_ids = {free_run.tokens[6]};  // the third new token
  const auto stopped = generate(*loaded.model, prompt_of(4), options);
  EXPECT_TRUE(stopped.stopped_at_eos);
  EXPECT_LE(stopped.new_tokens, 3);
  EXPECT_EQ(stopped.tokens.back(), free_run.tokens[6]);
}

// Greedy tokens chosen on the device and read back in chunks: the same tokens, stream and stop
// as reading each token back, wherever the EOS or the token limit falls in a chunk.
TEST(Generate, GreedyReadBackInChunksMatchesReadingEachToken) {
  auto loaded = load_test_model(data_dir() / "tiny-pythia");
  auto options = sampled(0, 10);
  options.sampling.temperature = 0;
  const auto run = [&](int64_t sync_every, int64_t max_new, std::vector<int64_t> eos) {
    auto o = options;
    o.greedy_sync_every = sync_every;
    o.max_new_tokens = max_new;
    o.stop_at_eos = !eos.empty();
    o.eos_ids = eos;
    std::vector<int64_t> streamed;
    auto result =
        generate(*loaded.model, prompt_of(4), o, [&](int64_t token) { streamed.push_back(token); });
    EXPECT_EQ(std::vector<int64_t>(result.tokens.begin() + 4, result.tokens.end()), streamed);
    return result;
  };
  const auto free_run = run(1, 10, {});
  ASSERT_EQ(free_run.new_tokens, 10);
  for (const int64_t max_new : {7, 10}) {
    const auto chunked = run(4, max_new, {});
    EXPECT_EQ(chunked.tokens, run(1, max_new, {}).tokens) << max_new;
    EXPECT_EQ(chunked.new_tokens, max_new);
  }
  // EOS at the 7th new token: inside the second chunk of 4 after the prefill's token.
  const std::vector<int64_t> eos = {free_run.tokens[4 + 6]};
  const auto per_token = run(1, 10, eos);
  const auto chunked = run(4, 10, eos);
  EXPECT_TRUE(chunked.stopped_at_eos);
  EXPECT_EQ(chunked.tokens, per_token.tokens);
  EXPECT_EQ(chunked.new_tokens, per_token.new_tokens);
  EXPECT_EQ(chunked.tokens.back(), eos[0]);
}

TEST(Generate, NewTokensStopAtTheModelsContext) {
  auto loaded = load_test_model(data_dir() / "tiny-pythia");
  const auto context = loaded.config.max_position_embeddings;
  const auto result = generate(*loaded.model, prompt_of(context - 3), sampled(0, 10));
  EXPECT_EQ(result.new_tokens, 3);
  EXPECT_TRUE(result.stopped_at_context);
}

TEST(Generate, PromptLongerThanContextIsAUserErrorNamingBothLengths) {
  auto loaded = load_test_model(data_dir() / "tiny-pythia");
  const auto context = loaded.config.max_position_embeddings;
  try {
    generate(*loaded.model, prompt_of(context + 1), sampled(0, 1));
    FAIL() << "no UserError";
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--prompt"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(context + 1)), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(context)), std::string::npos) << message;
  }
}

TEST(Generate, EmptyPromptAndOutOfVocabularyIdsAreUserErrors) {
  auto loaded = load_test_model(data_dir() / "tiny-pythia");
  EXPECT_THROW(generate(*loaded.model, {}, sampled(0, 1)), UserError);
  EXPECT_THROW(generate(*loaded.model, {5, loaded.config.vocab_size}, sampled(0, 1)), UserError);
  EXPECT_THROW(generate(*loaded.model, {-1}, sampled(0, 1)), UserError);
}

// The static path (device position, index_copy_ into the cache, attention over the whole capacity
// under a mask) is what a CUDA graph replays; on the CPU it runs eagerly and must match the
// dynamic path step for step.
void expect_static_steps_match_dynamic(const std::filesystem::path& model_dir) {
  auto loaded = load_test_model(model_dir);
  auto& model = *loaded.model;
  model.eval();
  torch::NoGradGuard no_grad;
  const auto prompt = ids_tensor(prompt_of(5));
  // 13: not a multiple of 16, so the padded mask row is cut; the steps run until the cache is full.
  auto dynamic = model.make_cache(1, 13);
  auto fixed = model.make_cache(1, 13);
  model.forward(prompt, &dynamic);
  model.forward(prompt, &fixed);
  fixed.enable_static_decode();
  for (int64_t step = 0; step < 8; ++step) {
    const auto ids = ids_tensor({40 + 7 * step});
    const auto expected = model.forward(ids, &dynamic);
    const auto got = model.forward(ids, &fixed);
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_LT(max_abs_diff(got, expected), 1e-5) << model_dir << " step " << step;
    EXPECT_EQ(fixed.length(), dynamic.length());
    EXPECT_EQ(fixed.position().item<int64_t>(), dynamic.length());
  }
  EXPECT_EQ(fixed.length(), fixed.capacity());
  // Reused after a reset: a prompt (T > 1) takes the dynamic path on a static cache.
  fixed.reset();
  dynamic.reset();
  EXPECT_LT(max_abs_diff(model.forward(prompt, &fixed), model.forward(prompt, &dynamic)), 1e-5);
  EXPECT_LT(max_abs_diff(model.forward(ids_tensor({9}), &fixed),
                         model.forward(ids_tensor({9}), &dynamic)),
            1e-5);
}

TEST(Generate, StaticDecodeStepsMatchDynamicStepsGptNeox) {
  expect_static_steps_match_dynamic(data_dir() / "tiny-pythia");
}

TEST(Generate, StaticDecodeStepsMatchDynamicStepsLlama) {
  expect_static_steps_match_dynamic(data_dir() / "tiny-llama");
}

// Replaying a captured decode step (greedy: tokens kept on the device) must choose exactly the
// tokens eager steps choose.
TEST(GenerateCuda, CudaGraphDecodeChoosesTheSameTokensAsEagerDecode) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* name : {"tiny-pythia", "tiny-llama"}) {
    auto loaded = load_test_model(data_dir() / name, torch::kFloat, torch::kCUDA);
    loaded.model->eval();
    for (const double temperature : {0.0, 1.0}) {
      auto options = sampled(7, 20);
      options.sampling.temperature = temperature;
      options.cuda_graph = false;
      options.greedy_sync_every = 1;  // each token read back: the plain reference
      const auto eager = generate(*loaded.model, prompt_of(6), options);
      options.greedy_sync_every = 0;  // greedy: chosen on the device, read back 16 at a time
      options.cuda_graph = true;
      const auto replayed = generate(*loaded.model, prompt_of(6), options);
      EXPECT_EQ(eager.decode_path, "eager");
      EXPECT_EQ(replayed.decode_path, "cuda_graph") << name;
      EXPECT_EQ(replayed.tokens, eager.tokens) << name << " temperature " << temperature;
    }
  }
}

}  // namespace
}  // namespace llm::test

namespace llm::test {
namespace {

// A throughput probe at a real size (pythia-160m shape, random weights, bf16 on a GPU); run by
// hand with --gtest_also_run_disabled_tests. Records tokens/s as a test property.
TEST(GenerateBench, DISABLED_Pythia160mBf16DecodeThroughputOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  TempDir dir;
  std::filesystem::copy_file(data_dir() / "shapes" / "pythia-160m.json",
                             dir.path() / "config.json");
  auto loaded =
      llmhost::load_model(model_plugins(), dir.path(), torch::kCUDA, torch::kBFloat16, true, 1);
  auto options = GenerationOptions();
  options.max_new_tokens = 200;
  options.stop_at_eos = false;
  options.sampling.temperature = 0;
  generate(*loaded.model, prompt_of(16), options);  // warm-up
  const auto result = generate(*loaded.model, prompt_of(128), options);
  EXPECT_EQ(result.new_tokens, 200);
  RecordProperty("tokens_per_second", std::to_string(result.tokens_per_second));
  std::cout << "pythia-160m bf16 decode: " << result.tokens_per_second << " tokens/s, prefill "
            << result.prefill_seconds * 1e3 << " ms\n";
}

}  // namespace
}  // namespace llm::test
