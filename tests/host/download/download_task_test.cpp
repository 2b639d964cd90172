// llmhost --task download end to end, against fake_hub.py on 127.0.0.1 (never the internet):
// full download, resume after a cut, a server that ignores Range, SHA-256 and size checks,
// gated repos with and without a token, 404s, network failure, disk full, path safety; then
// generate on the downloaded model.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>

#include "host/download/fake_hub_server.hpp"
#include "llm/json_file.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;
using llm::test::FakeHubServer;
using llm::test::read_bytes;
using llm::test::run_llmhost;
using llm::test::TempDir;

constexpr const char* kRepo = "EleutherAI/tiny-pythia";
constexpr const char* kRepoKey = "models/EleutherAI/tiny-pythia";
constexpr const char* kWeights = "models/EleutherAI/tiny-pythia/model.safetensors";
constexpr const char* kToken = "hf_TestSecretToken1234";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string error_line(const std::string& err) {
  const auto start = err.find("llmhost: error: ");
  return start == std::string::npos ? "" : err.substr(start, err.find('\n', start) - start);
}

class DownloadTask : public ::testing::Test {
 protected:
  void SetUp() override {
    // llmhost inherits this process's environment, and the first definition of a variable wins:
    // a developer's token or mirror must not leak into (or redirect) these runs.
    for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT"}) {
      ::unsetenv(name);
    }
    hub_.add_repo(kRepoKey, data_dir() / "tiny-pythia");
  }

  llm::test::CommandResult download(std::vector<std::string> extra_args = {},
                                    std::vector<std::string> extra_env = {}) {
    std::vector<std::string> args{
        "--task",           "download",           "--repo_id",        kRepo,
        "--checkpoint_dir", out_.path().string(), "--retry_delay_ms", "1"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<std::string> env{"HF_ENDPOINT=" + hub_.endpoint()};
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    return run_llmhost(args, env);
  }
  fs::path destination() const { return out_.path() / kRepo; }

  void expect_identical_to_source() const {
    for (const auto& entry : fs::directory_iterator(data_dir() / "tiny-pythia")) {
      const auto name = entry.path().filename();
      ASSERT_TRUE(fs::exists(destination() / name)) << name;
      EXPECT_EQ(read_bytes(destination() / name), read_bytes(entry.path())) << name;
      EXPECT_FALSE(fs::exists(destination() / (name.string() + ".incomplete"))) << name;
    }
  }
  std::vector<std::string> ranges_asked() const {
    std::vector<std::string> ranges;
    for (const auto& r : hub_.requests()) {
      if (r["range"].is_string()) ranges.push_back(r["range"].get<std::string>());
    }
    return ranges;
  }

  FakeHubServer hub_;
  TempDir out_;
};

TEST_F(DownloadTask, FullDownloadIsByteIdenticalAndFollowsTheCdnRedirect) {
  const auto r = download({"--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_identical_to_source();

  const auto report = llm::Json::parse(r.out);
  EXPECT_EQ(report["destination"], destination().string());
  EXPECT_EQ(report["files"].size(), 5u);  // config, generation_config, weights, 2 tokenizer files
  EXPECT_EQ(report["bytes"].get<uint64_t>(), report["bytes_transferred"].get<uint64_t>());
  uint64_t listed = 0;
  for (const auto& entry : fs::directory_iterator(data_dir() / "tiny-pythia")) {
    listed += fs::file_size(entry.path());
  }
  EXPECT_EQ(report["bytes"].get<uint64_t>(), listed);

  bool via_cdn = false;
  for (const auto& request : hub_.requests()) {
    via_cdn = via_cdn || contains(request["path"].get<std::string>(), "/cdn/");
  }
  EXPECT_TRUE(via_cdn) << "the weights come through the 302 to /cdn/";
}

TEST_F(DownloadTask, SecondRunFindsFilesPresentAndTransfersNothing) {
  ASSERT_EQ(download().exit_code, 0);
  const auto r = download({"--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = llm::Json::parse(r.out);
  EXPECT_EQ(report["bytes_transferred"].get<uint64_t>(), 0u);
  for (const auto& file : report["files"]) EXPECT_EQ(file["status"], "present");
}

TEST_F(DownloadTask, ResumesACutTransferWithARangeRequest) {
  constexpr uint64_t kCutAt = 300000;
  hub_.configure({{"cut", {{kWeights, {kCutAt, 1}}}}});

  const auto first = download({"--max_retries", "0"});
  EXPECT_EQ(first.exit_code, 2) << first.err;
  EXPECT_TRUE(contains(error_line(first.err), "network failure")) << first.err;
  EXPECT_TRUE(contains(error_line(first.err), "run again to resume")) << first.err;
  EXPECT_FALSE(fs::exists(destination() / "model.safetensors"));
  ASSERT_EQ(fs::file_size(destination() / "model.safetensors.incomplete"), kCutAt);

  const auto second = download({"--format", "json"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  expect_identical_to_source();
  EXPECT_EQ(ranges_asked(), std::vector<std::string>(2, "bytes=300000-"))  // resolve, then CDN
      << "the second run continues where the first stopped";
  const auto report = llm::Json::parse(second.out);
  for (const auto& file : report["files"]) {
    if (file["name"] == "model.safetensors") {
      EXPECT_EQ(file["status"], "resumed");
    }
  }
}

TEST_F(DownloadTask, RetriesACutTransferInTheSameRunWithBackoff) {
  hub_.configure({{"cut", {{kWeights, {100000, 2}}}}});
  const auto r = download({"--max_retries", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_identical_to_source();
  EXPECT_TRUE(contains(r.err, "retrying in")) << r.err;
  EXPECT_EQ(ranges_asked(), (std::vector<std::string>{"bytes=100000-", "bytes=100000-",
                                                      "bytes=200000-", "bytes=200000-"}));
}

TEST_F(DownloadTask, RestartsFromZeroWhenTheServerIgnoresRange) {
  hub_.configure({{"ignore_range", true}});
  fs::create_directories(destination());
  // A partial file of wrong bytes: a 200 answer must replace it, not be appended to it.
  std::ofstream(destination() / "model.safetensors.incomplete", std::ios::binary)
      << std::string(4096, 'x');
  const auto r = download();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_identical_to_source();
  EXPECT_FALSE(ranges_asked().empty()) << "it did ask for a range";
}

TEST_F(DownloadTask, WrongSha256IsDetectedAndLeavesNoFile) {
  hub_.configure({{"wrong_sha256", {kWeights}}});
  const auto r = download();
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "model.safetensors")) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "SHA-256")) << r.err;
  EXPECT_FALSE(fs::exists(destination() / "model.safetensors"));
  EXPECT_FALSE(fs::exists(destination() / "model.safetensors.incomplete"));
}

TEST_F(DownloadTask, GatedRepoWithoutTokenSaysGatedAndHowToPassOne) {
  hub_.configure({{"gated", {{kRepoKey, kToken}}}});
  const auto r = download();
  EXPECT_EQ(r.exit_code, 2) << r.err;
  const auto line = error_line(r.err);
  EXPECT_TRUE(contains(line, "gated")) << r.err;
  EXPECT_TRUE(contains(line, "--access_token")) << r.err;
  EXPECT_TRUE(contains(line, "HF_TOKEN")) << r.err;
  EXPECT_FALSE(fs::exists(destination() / "config.json"));
  EXPECT_FALSE(fs::exists(destination() / "config.json.incomplete")) << "an empty partial file";
}

TEST_F(DownloadTask, GatedRepoWithAWrongTokenNeverPrintsIt) {
  hub_.configure({{"gated", {{kRepoKey, kToken}}}});
  const std::string wrong = "hf_WrongTokenShouldStayHidden";
  for (const auto& r : {download({"--access_token", wrong}), download({}, {"HF_TOKEN=" + wrong})}) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(contains(error_line(r.err), "refused the access token")) << r.err;
    EXPECT_FALSE(contains(r.err + r.out, wrong));
  }
}

TEST_F(DownloadTask, GatedRepoWithTokenDownloadsAndTheTokenStaysOffTheCdnHost) {
  // The CDN is another host name: the Authorization header must not follow the redirect.
  hub_.configure({{"gated", {{kRepoKey, kToken}}}, {"cdn_host", "localhost"}});
  const auto r = download({}, {std::string("HF_TOKEN=") + kToken});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_identical_to_source();
  EXPECT_FALSE(contains(r.err + r.out, kToken));
  int resolves_with_token = 0;
  int cdn_requests = 0;
  for (const auto& request : hub_.requests()) {
    const auto path = request["path"].get<std::string>();
    if (contains(path, "/resolve/")) resolves_with_token += request["has_auth"].get<bool>();
    if (contains(path, "/cdn/")) {
      ++cdn_requests;
      EXPECT_FALSE(request["has_auth"].get<bool>()) << path;
    }
  }
  EXPECT_EQ(resolves_with_token, 5);
  EXPECT_EQ(cdn_requests, 1);

  TempDir other;
  const auto with_flag = run_llmhost({"--task", "download", "--repo_id", kRepo, "--checkpoint_dir",
                                      other.path().string(), "--access_token", kToken},
                                     {"HF_ENDPOINT=" + hub_.endpoint()});
  EXPECT_EQ(with_flag.exit_code, 0) << with_flag.err;
}

TEST_F(DownloadTask, MissingRepoOrRevisionIsNamed) {
  const auto no_repo = run_llmhost({"--task", "download", "--repo_id", "EleutherAI/no-such-model",
                                    "--checkpoint_dir", out_.path().string()},
                                   {"HF_ENDPOINT=" + hub_.endpoint()});
  EXPECT_EQ(no_repo.exit_code, 2) << no_repo.err;
  EXPECT_TRUE(contains(error_line(no_repo.err), "'EleutherAI/no-such-model'")) << no_repo.err;
  EXPECT_TRUE(contains(error_line(no_repo.err), "revision 'main'")) << no_repo.err;
  EXPECT_TRUE(contains(error_line(no_repo.err), "not found")) << no_repo.err;

  const auto no_revision = download({"--revision", "v9.9"});
  EXPECT_EQ(no_revision.exit_code, 2) << no_revision.err;
  EXPECT_TRUE(contains(error_line(no_revision.err), "revision 'v9.9' not found"))
      << no_revision.err;
  EXPECT_TRUE(contains(error_line(no_revision.err), kRepo)) << no_revision.err;
}

TEST_F(DownloadTask, NetworkFailureRetriesWithBackoffThenFailsClearly) {
  const auto r =
      run_llmhost({"--task", "download", "--repo_id", kRepo, "--checkpoint_dir",
                   out_.path().string(), "--max_retries", "2", "--retry_delay_ms", "1"},
                  {"HF_ENDPOINT=http://127.0.0.1:" + std::to_string(llm::test::closed_port())});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "network failure")) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "after 3 attempts")) << r.err;
  EXPECT_TRUE(contains(r.err, "(attempt 2 of 3)")) << r.err;
  EXPECT_TRUE(contains(r.err, "(attempt 3 of 3)")) << r.err;
}

TEST_F(DownloadTask, DiskFullIsReportedAndThePartialFileKept) {
  fs::create_directories(destination());
  // Writes to /dev/full fail with ENOSPC, as on a full disk.
  fs::create_symlink("/dev/full", destination() / "config.json.incomplete");
  const auto r = download({"--include", "config.json"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "No space left on device")) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "config.json.incomplete")) << r.err;
  EXPECT_TRUE(fs::is_symlink(destination() / "config.json.incomplete"));
  EXPECT_FALSE(fs::exists(destination() / "config.json"));
}

TEST_F(DownloadTask, PickleOnlyRepoIsRefusedWithAHint) {
  hub_.add_file("models/old/pickled", "config.json", "{}");
  hub_.add_file("models/old/pickled", "pytorch_model.bin", "not a real pickle");
  const auto r = run_llmhost(
      {"--task", "download", "--repo_id", "old/pickled", "--checkpoint_dir", out_.path().string()},
      {"HF_ENDPOINT=" + hub_.endpoint()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "pickle")) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "safetensors")) << r.err;
  EXPECT_FALSE(fs::exists(out_.path() / "old"));
}

TEST_F(DownloadTask, UnsafeFileNameInTheListingIsRefused) {
  hub_.configure({{"extra_siblings", {{kRepoKey, {{{"rfilename", "../../escape.json"}}}}}}});
  const auto r = download({"--include", "*.json"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "'../../escape.json'")) << r.err;
  EXPECT_FALSE(fs::exists(out_.path() / "escape.json"));
  EXPECT_FALSE(fs::exists(out_.path().parent_path() / "escape.json"));
}

TEST_F(DownloadTask, DatasetDownloadFetchesItsDataFile) {
  hub_.add_file("datasets/databricks/databricks-dolly-15k", "README.md", "# Dolly\n");
  hub_.add_file("datasets/databricks/databricks-dolly-15k", "databricks-dolly-15k.jsonl",
                read_bytes(data_dir() / "datasets" / "dolly-sample.jsonl"));
  const auto r =
      run_llmhost({"--task", "download", "--repo_type", "dataset", "--repo_id",
                   "databricks/databricks-dolly-15k", "--checkpoint_dir", out_.path().string()},
                  {"HF_ENDPOINT=" + hub_.endpoint()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto dir = out_.path() / "databricks" / "databricks-dolly-15k";
  EXPECT_EQ(read_bytes(dir / "databricks-dolly-15k.jsonl"),
            read_bytes(data_dir() / "datasets" / "dolly-sample.jsonl"));
  EXPECT_FALSE(fs::exists(dir / "README.md"));
}

TEST_F(DownloadTask, IncludeMatchingNothingListsTheRepoFiles) {
  const auto r = download({"--include", "*.gguf"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "*.gguf")) << r.err;
  EXPECT_TRUE(contains(error_line(r.err), "model.safetensors")) << r.err;
}

// The downloaded tokenizer encodes like the reference tokenizer (first and last golden strings).
TEST_F(DownloadTask, TokenizeOnTheDownloadedModelMatchesTheGolden) {
  ASSERT_EQ(download().exit_code, 0);
  const auto golden = llm::read_json_file(data_dir() / "golden" / "tokenizers.json");
  const auto& cases = golden["bpe_tiny_pythia"];
  ASSERT_GE(cases.size(), 2u);
  for (const auto* expected : {&cases.front(), &cases.back()}) {
    const auto r =
        run_llmhost({"--task", "tokenize", "--checkpoint_dir", destination().string(), "--text",
                     (*expected)["text"].get<std::string>(), "--format", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto out = llm::Json::parse(r.out);
    EXPECT_EQ(out["ids"], (*expected)["ids"]);
    EXPECT_EQ(out["decoded"], (*expected)["decoded"]);
  }
}

// The point of downloading: the model plugin loads what came over the wire and generates what
// transformers generates from the original files.
TEST_F(DownloadTask, GenerateRunsOnTheDownloadedModelLikeOnTheOriginal) {
  ASSERT_EQ(download().exit_code, 0);
  const auto generate = [](const fs::path& checkpoint) {
    return run_llmhost({"--task", "generate", "--checkpoint_dir", checkpoint.string(), "--prompt",
                        "Tell me an interesting fun fact about earth:", "--temperature", "0",
                        "--max_new_tokens", "12", "--ignore_eos", "--format", "json"});
  };
  const auto downloaded = generate(destination());
  const auto original = generate(data_dir() / "tiny-pythia");
  ASSERT_EQ(downloaded.exit_code, 0) << downloaded.err;
  ASSERT_EQ(original.exit_code, 0) << original.err;
  // Same bytes, same machine: the same tokens exactly (the golden comparison is generate_test's).
  EXPECT_EQ(llm::Json::parse(downloaded.out)["output_ids"],
            llm::Json::parse(original.out)["output_ids"]);
}

}  // namespace
