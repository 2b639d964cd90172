#include "llm/safetensors.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "llm/error.hpp"
#include "llm/model_config.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;
using llm::test::TempDir;

using llm::test::user_error_of;

// The tensor's bytes straight from the file, read without the reader under test.
std::string bytes_on_disk(const fs::path& path, const llm::TensorInfo& info) {
  const std::string all = llm::test::read_file_bytes(path);
  uint64_t header_length = 0;
  std::memcpy(&header_length, all.data(), 8);
  return all.substr(8 + header_length + info.begin, info.end - info.begin);
}

std::string tensor_bytes(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

std::vector<std::pair<std::string, torch::Tensor>> all_tensors(const llm::SafetensorsFile& file) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& info : file.tensors()) out.emplace_back(info.name, file.tensor(info.name));
  return out;
}

const fs::path kPythia = data_dir() / "tiny-pythia" / "model.safetensors";

TEST(SafetensorsFile, ReadsTinyPythiaWeightsMatchingConfigAndBytesOnDisk) {
  const llm::SafetensorsFile file(kPythia);
  const auto config = llm::read_model_config(data_dir() / "tiny-pythia");
  EXPECT_EQ(file.metadata().at("format"), "pt");

  const auto& embed = file.info("gpt_neox.embed_in.weight");
  EXPECT_EQ(embed.dtype, torch::kFloat);
  EXPECT_EQ(embed.shape, (std::vector<int64_t>{config.vocab_size, config.hidden_size}));
  for (int64_t layer = 0; layer < config.num_layers; ++layer) {
    const auto qkv =
        file.info("gpt_neox.layers." + std::to_string(layer) + ".attention.query_key_value.weight");
    EXPECT_EQ(qkv.shape, (std::vector<int64_t>{3 * config.hidden_size, config.hidden_size}));
  }
  for (const auto& info : file.tensors()) {
    const torch::Tensor t = file.tensor(info.name);
    EXPECT_EQ(t.sizes().vec(), info.shape) << info.name;
    EXPECT_EQ(tensor_bytes(t), bytes_on_disk(kPythia, info)) << info.name;
  }
}

TEST(SafetensorsFile, ReadsGoldenLogitsFilesWithIdsLabelsAndLogitsShapes) {
  for (const std::string model : {"tiny-pythia", "tiny-llama"}) {
    const llm::SafetensorsFile file(data_dir() / "golden" / (model + "-logits.safetensors"));
    const auto vocab = llm::read_model_config(data_dir() / model).vocab_size;
    const auto ids = file.tensor("input_ids");
    ASSERT_EQ(ids.scalar_type(), torch::kLong);
    ASSERT_EQ(ids.dim(), 2);
    EXPECT_EQ(file.info("labels").shape, file.info("input_ids").shape);
    EXPECT_EQ(file.info("labels").dtype, torch::kLong);
    for (const char* name : {"logits", "logits_lora", "logits_merged"}) {
      EXPECT_EQ(file.info(name).dtype, torch::kFloat) << name;
      EXPECT_EQ(file.info(name).shape, (std::vector<int64_t>{ids.size(0), ids.size(1), vocab}));
    }
    // The fixture masks the first five label positions with -100.
    EXPECT_TRUE(file.tensor("labels").slice(1, 0, 5).eq(-100).all().item<bool>()) << model;
    EXPECT_TRUE(ids.ge(0).logical_and(ids.lt(vocab)).all().item<bool>()) << model;
  }
}

TEST(SafetensorsFile, TensorViewIsZeroCopyAndKeepsTheMappingAlive) {
  torch::Tensor view;
  std::string expected;
  {
    const llm::SafetensorsFile file(kPythia);
    view = file.tensor("embed_out.weight");
    EXPECT_EQ(view.data_ptr(), file.tensor("embed_out.weight").data_ptr());
    expected = bytes_on_disk(kPythia, file.info("embed_out.weight"));
  }
  // The file object is gone; the view still reads the mapped bytes.
  EXPECT_EQ(tensor_bytes(view), expected);
}

TEST(SafetensorsFile, WritingIntoAViewNeverChangesTheFile) {
  TempDir dir;
  const auto copy = dir.path() / "model.safetensors";
  fs::copy_file(kPythia, copy);
  const std::string before = llm::test::read_file_bytes(copy);
  {
    const llm::SafetensorsFile file(copy);
    file.tensor("embed_out.weight").add_(1.0f);
  }
  EXPECT_EQ(llm::test::read_file_bytes(copy), before);
}

TEST(SafetensorsFile, UnalignedTensorIsReadCorrectly) {
  // A writer other than the reference one may put an F32 range at an odd offset.
  TempDir dir;
  const auto path = dir.path() / "odd.safetensors";
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  const float values[2] = {1.5f, -2.25f};
  std::string data(1, '\x07');
  data.append(reinterpret_cast<const char*>(values), sizeof values);
  uint64_t length = header.size();
  std::ofstream(path, std::ios::binary)
      << std::string(reinterpret_cast<const char*>(&length), 8) << header << data;

  const llm::SafetensorsFile file(path);
  const auto b = file.tensor("b");
  EXPECT_EQ(b[0].item<float>(), values[0]);
  EXPECT_EQ(b[1].item<float>(), values[1]);
  EXPECT_EQ(file.tensor("a")[0].item<uint8_t>(), 7);
}

TEST(SafetensorsFile, MissingTensorNameIsAUserErrorNamingTheFile) {
  const llm::SafetensorsFile file(kPythia);
  EXPECT_FALSE(file.contains("no.such.weight"));
  const auto message = user_error_of([&] { file.tensor("no.such.weight"); });
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("no.such.weight"), std::string::npos) << message;
}

TEST(SafetensorsFile, MissingFileIsAUserErrorNamingIt) {
  const auto message = user_error_of([] { llm::SafetensorsFile("/nonexistent/x.safetensors"); });
  EXPECT_NE(message.find("/nonexistent/x.safetensors"), std::string::npos) << message;
}

// Python's safetensors.torch.save_file wrote the fixtures; writing the same tensors here must
// give the same bytes (layout order, header JSON, padding).
TEST(SafetensorsWrite, ReproducesReferenceFilesByteForByte) {
  TempDir dir;
  const std::vector<fs::path> references = {
      kPythia,
      data_dir() / "tiny-llama" / "model.safetensors",
      data_dir() / "golden" / "tiny-pythia-logits.safetensors",
      data_dir() / "golden" / "tiny-llama-lora-adapter" / "adapter_model.safetensors",
  };
  for (const auto& reference : references) {
    const llm::SafetensorsFile file(reference);
    const auto out = dir.path() / "rewritten.safetensors";
    llm::write_safetensors(out, all_tensors(file), file.metadata());
    EXPECT_EQ(llm::test::read_file_bytes(out), llm::test::read_file_bytes(reference)) << reference;
  }
}

TEST(SafetensorsWrite, RoundTripIsBitIdenticalForEveryDtype) {
  TempDir dir;
  torch::manual_seed(7);
  const auto f32 = torch::randn({3, 5});
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", f32},
      {"bf16", torch::randn({4, 3}).to(torch::kBFloat16)},
      {"f16", torch::randn({2, 2, 3}).to(torch::kHalf)},
      {"f64", torch::randn({5}, torch::kDouble)},
      {"i64", torch::randint(-1000000, 1000000, {7}, torch::kLong)},
      {"i32", torch::randint(-1000, 1000, {3, 1}, torch::kInt)},
      {"i16", torch::randint(-1000, 1000, {2}, torch::kShort)},
      {"i8", torch::randint(-100, 100, {3}, torch::kChar)},
      {"u8", torch::randint(0, 255, {5}, torch::kByte)},
      {"bool", torch::rand({6}).gt(0.5)},
      {"scalar", torch::tensor(3.25f).reshape({})},
      {"empty", torch::zeros({0, 4})},
      {"transposed", f32.t()},  // not contiguous: written as its logical layout
  };
  const auto path = dir.path() / "all.safetensors";
  llm::write_safetensors(path, tensors, {{"format", "pt"}});

  const llm::SafetensorsFile file(path);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  ASSERT_EQ(file.tensors().size(), tensors.size());
  for (const auto& [name, original] : tensors) {
    const auto read = file.tensor(name);
    EXPECT_EQ(read.scalar_type(), original.scalar_type()) << name;
    EXPECT_EQ(read.sizes(), original.sizes()) << name;
    EXPECT_EQ(tensor_bytes(read), tensor_bytes(original)) << name;
  }
  // Header padded to 8 bytes: every range starts aligned to its element size.
  uint64_t header_length = 0;
  std::memcpy(&header_length, llm::test::read_file_bytes(path).data(), 8);
  EXPECT_EQ((8 + header_length) % 8, 0u);
  for (const auto& info : file.tensors()) {
    EXPECT_EQ(info.begin % c10::elementSize(info.dtype), 0u) << info.name;
  }
  // Writing what was read gives the same file again.
  const auto again = dir.path() / "again.safetensors";
  llm::write_safetensors(again, all_tensors(file), file.metadata());
  EXPECT_EQ(llm::test::read_file_bytes(again), llm::test::read_file_bytes(path));
}

TEST(SafetensorsWrite, DuplicateNameIsRejectedAndNothingIsWritten) {
  TempDir dir;
  const auto path = dir.path() / "dup.safetensors";
  const auto message = user_error_of([&] {
    llm::write_safetensors(path, {{"w", torch::ones({2})}, {"w", torch::zeros({2})}});
  });
  EXPECT_NE(message.find("dup.safetensors"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path));
}

TEST(SafetensorsWrite, MissingDirectoryIsAUserErrorNamingThePath) {
  const auto message = user_error_of([] {
    llm::write_safetensors("/nonexistent-dir/out.safetensors", {{"w", torch::ones({2})}});
  });
  EXPECT_NE(message.find("/nonexistent-dir/out.safetensors"), std::string::npos) << message;
}

TEST(SafetensorsCheckpoint, OpensSingleFileCheckpoint) {
  const auto checkpoint = llm::SafetensorsCheckpoint::open(data_dir() / "tiny-pythia");
  const llm::SafetensorsFile file(kPythia);
  EXPECT_EQ(checkpoint.names().size(), file.tensors().size());
  EXPECT_EQ(checkpoint.file_of("embed_out.weight"), kPythia);
  EXPECT_TRUE(torch::equal(checkpoint.tensor("embed_out.weight"), file.tensor("embed_out.weight")));
}

TEST(SafetensorsCheckpoint, OpensShardedCheckpointThroughItsIndex) {
  TempDir dir;
  const llm::SafetensorsFile source(kPythia);
  const auto tensors = all_tensors(source);
  const size_t half = tensors.size() / 2;
  const std::vector<std::string> shards = {"model-00001-of-00002.safetensors",
                                           "model-00002-of-00002.safetensors"};
  llm::write_safetensors(dir.path() / shards[0], {tensors.begin(), tensors.begin() + half});
  llm::write_safetensors(dir.path() / shards[1], {tensors.begin() + half, tensors.end()});
  llm::Json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", llm::Json::object()}};
  for (size_t i = 0; i < tensors.size(); ++i) {
    index["weight_map"][tensors[i].first] = shards[i < half ? 0 : 1];
  }
  std::ofstream(dir.path() / "model.safetensors.index.json") << index.dump(2);

  const auto checkpoint = llm::SafetensorsCheckpoint::open(dir.path());
  ASSERT_EQ(checkpoint.names().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& name = tensors[i].first;
    EXPECT_EQ(checkpoint.file_of(name), dir.path() / shards[i < half ? 0 : 1]) << name;
    EXPECT_TRUE(torch::equal(checkpoint.tensor(name), tensors[i].second)) << name;
  }
  const auto message = user_error_of([&] { checkpoint.tensor("missing.weight"); });
  EXPECT_NE(message.find(dir.path().string()), std::string::npos) << message;
}

struct BadCheckpointCase {
  std::string dir;
  std::vector<std::string> expected;  // substrings of the message besides the directory name
};

class SafetensorsBadCheckpoint : public testing::TestWithParam<BadCheckpointCase> {};

TEST_P(SafetensorsBadCheckpoint, IsAUserErrorNamingTheDirectoryAndTheProblem) {
  const auto dir = data_dir() / "bad" / "checkpoints" / GetParam().dir;
  const auto message = user_error_of([&] { llm::SafetensorsCheckpoint::open(dir); });
  EXPECT_NE(message.find(GetParam().dir), std::string::npos) << message;
  for (const auto& part : GetParam().expected) {
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Safetensors, SafetensorsBadCheckpoint,
    testing::Values(
        BadCheckpointCase{"does-not-exist", {"does not exist"}},
        BadCheckpointCase{"empty-dir", {"model.safetensors", "model.safetensors.index.json"}},
        BadCheckpointCase{"pickle-only", {"pytorch_model.bin", "never executed", "convert"}},
        BadCheckpointCase{"index-escapes-dir", {"model.safetensors.index.json", "'a'"}},
        BadCheckpointCase{"index-missing-shard", {"model-00002-of-00002.safetensors"}},
        BadCheckpointCase{"index-missing-tensor", {"lm_head.weight", "does not contain"}},
        BadCheckpointCase{"index-no-weight-map", {"weight_map"}}),
    [](const testing::TestParamInfo<BadCheckpointCase>& info) {
      std::string name = info.param.dir;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

struct BadFileCase {
  std::string file;
  std::string expected;  // a phrase of the message that says what is wrong
};

class SafetensorsBadFile : public testing::TestWithParam<BadFileCase> {};

TEST_P(SafetensorsBadFile, IsRejectedWithAOneLineUserErrorNamingTheFile) {
  const auto path = data_dir() / "bad" / "safetensors" / GetParam().file;
  ASSERT_TRUE(fs::exists(path)) << path << " (run tests/data/bad/make_bad_files.py)";
  const auto message = user_error_of([&] { llm::SafetensorsFile file(path); });
  EXPECT_NE(message.find(GetParam().file), std::string::npos) << message;
  EXPECT_NE(message.find(GetParam().expected), std::string::npos)
      << "'" << GetParam().expected << "' not in: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Safetensors, SafetensorsBadFile,
    testing::Values(BadFileCase{"empty.safetensors", "too short"},
                    BadFileCase{"too-short.safetensors", "too short"},
                    BadFileCase{"header-length-absurd.safetensors", "100 MB"},
                    BadFileCase{"header-past-eof.safetensors", "past the end of the file"},
                    BadFileCase{
                        "offsets-past-end.safetensors",
                        "tensor 'gpt_neox.embed_in.weight' data_offsets [0, 999999] point past the "
                        "end of the file (16 bytes of data)"},
                    BadFileCase{"truncated-data.safetensors", "past the end of the file"},
                    BadFileCase{"shape-mismatch.safetensors", "does not match data_offsets"},
                    BadFileCase{"shape-overflow.safetensors", "too large"},
                    BadFileCase{"begin-after-end.safetensors", "begin after end"},
                    BadFileCase{"overlap.safetensors", "overlap"},
                    BadFileCase{"unknown-dtype.safetensors", "unknown dtype 'Q4_K'"},
                    BadFileCase{"negative-shape.safetensors", "non-negative"},
                    BadFileCase{"fractional-shape.safetensors", "non-negative integers"},
                    BadFileCase{"missing-offsets.safetensors", "data_offsets"},
                    BadFileCase{"invalid-utf8.safetensors", "not valid JSON"},
                    BadFileCase{"invalid-json.safetensors", "not valid JSON"},
                    BadFileCase{"header-not-object.safetensors", "must be a JSON object"},
                    BadFileCase{"tensor-not-object.safetensors", "tensor 'w' must be an object"},
                    BadFileCase{"metadata-not-strings.safetensors", "__metadata__"}),
    [](const testing::TestParamInfo<BadFileCase>& info) {
      std::string name = info.param.file.substr(0, info.param.file.find('.'));
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(SafetensorsDtype, NamesMapBothWays) {
  for (const char* name : {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}) {
    EXPECT_EQ(llm::safetensors_dtype_name(llm::safetensors_dtype(name, "test")), name);
  }
  const auto message = user_error_of([] { llm::safetensors_dtype("F8_E4M3", "x.safetensors"); });
  EXPECT_NE(message.find("x.safetensors"), std::string::npos) << message;
}

}  // namespace
