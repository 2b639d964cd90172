// The hub protocol pieces without a server: URLs, listing parsing, path safety, file selection,
// the pickle refusal, backoff, SHA-256 and the progress line.
#include <gtest/gtest.h>

#include <fstream>

#include "download/hub_client.hpp"
#include "download/progress_bar.hpp"
#include "download/retry_policy.hpp"
#include "download/sha256.hpp"
#include "llm/error.hpp"
#include "support/test_support.hpp"

namespace {

using namespace llmhost::download;

RepoRef model(const std::string& id, const std::string& revision = "main") {
  return {id, RepoType::kModel, revision};
}

std::vector<std::string> names(const std::vector<HubFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.name);
  return out;
}

TEST(DownloadHubUrls, ListingAsksForBlobsAndEscapesTheRevision) {
  EXPECT_EQ(listing_url("https://hub.test", model("EleutherAI/pythia-160m")),
            "https://hub.test/api/models/EleutherAI/pythia-160m/revision/main?blobs=true");
  EXPECT_EQ(listing_url("https://hub.test", model("org/m", "refs/pr/1")),
            "https://hub.test/api/models/org/m/revision/refs%2Fpr%2F1?blobs=true");
  EXPECT_EQ(listing_url("https://hub.test", {"databricks/dolly", RepoType::kDataset, "main"}),
            "https://hub.test/api/datasets/databricks/dolly/revision/main?blobs=true");
}

TEST(DownloadHubUrls, ResolveKeepsSlashesInFileNamesAndPrefixesDatasets) {
  EXPECT_EQ(resolve_url("https://hub.test", model("org/m"), "sub dir/model.safetensors"),
            "https://hub.test/org/m/resolve/main/sub%20dir/model.safetensors");
  EXPECT_EQ(resolve_url("https://hub.test", {"org/d", RepoType::kDataset, "v1.0"}, "a.jsonl"),
            "https://hub.test/datasets/org/d/resolve/v1.0/a.jsonl");
}

TEST(DownloadHubUrls, EndpointComesFromHfEndpointWithoutTrailingSlash) {
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
  EXPECT_EQ(hub_endpoint(), "http://127.0.0.1:9");
  ::setenv("HF_ENDPOINT", "ftp://mirror", 1);
  EXPECT_THROW(hub_endpoint(), llm::UserError);
  ::unsetenv("HF_ENDPOINT");
  EXPECT_EQ(hub_endpoint(), kDefaultEndpoint);
}

TEST(DownloadRepoId, AcceptsOrgSlashNameAndRejectsPathTricks) {
  EXPECT_NO_THROW(check_repo_id("EleutherAI/pythia-160m"));
  EXPECT_NO_THROW(check_repo_id("meta-llama/Llama-2-7b-hf"));
  EXPECT_NO_THROW(check_repo_id("gpt2"));
  for (const char* bad : {"", "/x", "a/", "../x", "a/..", "a/b/c", "a b/c", "a/b?x=1"}) {
    EXPECT_THROW(check_repo_id(bad), llm::UserError) << bad;
  }
  EXPECT_THROW(parse_repo_type("space"), llm::UserError);
}

TEST(DownloadPathSafety, OnlyRelativePathsInsideTheDestinationAreSafe) {
  for (const char* ok : {"config.json", "data/train.jsonl", "a/b/c.bin", "..hidden", "x..y"}) {
    EXPECT_TRUE(is_safe_relative_path(ok)) << ok;
  }
  for (const char* bad :
       {"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a\\b", "a/", "..", "."}) {
    EXPECT_FALSE(is_safe_relative_path(bad)) << bad;
  }
}

TEST(DownloadListing, ReadsSizesAndLfsDigests) {
  const std::string digest(64, 'a');
  const auto files = parse_listing(
      R"({"siblings": [{"rfilename": "config.json", "size": 561},
                       {"rfilename": "model.safetensors", "size": 134,
                        "lfs": {"sha256": ")" +
          digest + R"(", "size": 927648}},
                       {"rfilename": "README.md"}]})",
      "listing");
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].size, std::optional<uint64_t>(561));
  EXPECT_TRUE(files[0].sha256.empty());
  EXPECT_EQ(files[1].size, std::optional<uint64_t>(927648));  // the LFS size, not the pointer's
  EXPECT_EQ(files[1].sha256, digest);
  EXPECT_FALSE(files[2].size.has_value());
}

TEST(DownloadListing, RejectsUnsafeNamesAndMalformedJson) {
  EXPECT_THROW(parse_listing(R"({"siblings": [{"rfilename": "../../.bashrc"}]})", "l"),
               llm::UserError);
  EXPECT_THROW(parse_listing(R"({"siblings": [{"rfilename": "/etc/x"}]})", "l"), llm::UserError);
  EXPECT_THROW(parse_listing("<html>", "l"), llm::UserError);
  EXPECT_THROW(parse_listing(R"({"id": "x"})", "l"), llm::UserError);
  EXPECT_THROW(parse_listing(R"({"siblings": [{"rfilename": "m", "lfs": {"sha256": "zz"}}]})", "l"),
               llm::UserError);
}

TEST(DownloadSelection, DefaultModelPatternsPickWhatAModelPluginLoads) {
  std::vector<HubFile> files;
  for (const char* name :
       {"config.json", "generation_config.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
        "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "pytorch_model.bin",
        "README.md", ".gitattributes", "flax_model.msgpack"}) {
    files.push_back({name, std::nullopt, ""});
  }
  const auto selected = names(select_files(files, default_include(RepoType::kModel)));
  EXPECT_EQ(selected, (std::vector<std::string>{
                          "config.json", "generation_config.json",
                          "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                          "model.safetensors.index.json", "tokenizer.json", "tokenizer.model",
                          "tokenizer_config.json", "special_tokens_map.json"}));
}

TEST(DownloadSelection, IncludePatternsAreCommaSeparatedGlobsThatCrossDirectories) {
  EXPECT_EQ(split_patterns(" *.safetensors, *.json ,,tokenizer.model"),
            (std::vector<std::string>{"*.safetensors", "*.json", "tokenizer.model"}));
  const std::vector<HubFile> files{{"data/train.jsonl", {}, ""}, {"README.md", {}, ""}};
  EXPECT_EQ(names(select_files(files, default_include(RepoType::kDataset))),
            std::vector<std::string>{"data/train.jsonl"});
}

TEST(DownloadSelection, PickleOnlyModelIsRefusedWithAHint) {
  const std::vector<HubFile> pickles{{"config.json", {}, ""}, {"pytorch_model.bin", {}, ""}};
  try {
    require_safetensors(pickles, model("old/model"));
    FAIL() << "expected a UserError";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("pickle"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("old/model"), std::string::npos) << e.what();
  }
  const std::vector<HubFile> both{{"pytorch_model.bin", {}, ""}, {"model.safetensors", {}, ""}};
  EXPECT_NO_THROW(require_safetensors(both, model("new/model")));
}

TEST(DownloadHttpErrors, GatedMessageExplainsTheTokenAndNotFoundNamesRevision) {
  TransferResult gated;
  gated.status = 401;
  gated.hub_error_code = "GatedRepo";
  try {
    throw_http_error(gated, model("meta-llama/Llama-2-7b-hf"), "https://hub", "'x'", false);
  } catch (const llm::UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("gated"), std::string::npos) << message;
    EXPECT_NE(message.find("--access_token"), std::string::npos) << message;
    EXPECT_NE(message.find("HF_TOKEN"), std::string::npos) << message;
  }
  TransferResult missing;
  missing.status = 404;
  missing.hub_error_code = "RevisionNotFound";
  try {
    throw_http_error(missing, model("org/m", "v9"), "https://hub", "the file list", false);
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("revision 'v9'"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(is_retryable_status(503));
  EXPECT_FALSE(is_retryable_status(404));
}

TEST(DownloadRetry, BackoffDoublesAndIsCapped) {
  RetryPolicy policy;
  policy.first_delay = std::chrono::milliseconds(100);
  policy.max_delay = std::chrono::milliseconds(1000);
  EXPECT_EQ(backoff_delay(policy, 1).count(), 100);
  EXPECT_EQ(backoff_delay(policy, 2).count(), 200);
  EXPECT_EQ(backoff_delay(policy, 4).count(), 800);
  EXPECT_EQ(backoff_delay(policy, 5).count(), 1000);
  EXPECT_EQ(backoff_delay(policy, 60).count(), 1000);
}

TEST(DownloadSha256, MatchesTheStandardTestVectors) {
  Sha256 empty;
  EXPECT_EQ(empty.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.update("a");
  abc.update("bc");  // incremental updates hash like one
  EXPECT_EQ(abc.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  llm::test::TempDir dir;
  std::ofstream(dir.path() / "abc", std::ios::binary) << "abc";
  EXPECT_EQ(sha256_of_file(dir.path() / "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_THROW(sha256_of_file(dir.path() / "missing"), llm::UserError);
}

TEST(DownloadProgress, BarShowsBytesRateAndEta) {
  const std::string line =
      ProgressBar::render("model.safetensors", 512 * 1024, 1024 * 1024, 256.0 * 1024);
  EXPECT_NE(line.find("model.safetensors"), std::string::npos) << line;
  EXPECT_NE(line.find(" 50%"), std::string::npos) << line;
  EXPECT_NE(line.find("512.0 KiB / 1.0 MiB"), std::string::npos) << line;
  EXPECT_NE(line.find("256.0 KiB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 0:02"), std::string::npos) << line;
  EXPECT_EQ(format_duration(3725), "1:02:05");
}

TEST(DownloadProgress, PlainLinesWhenNotATerminal) {
  std::ostringstream err;
  ProgressBar bar(err, /*interactive=*/false, "config.json", 561, 0);
  bar.update(561);
  bar.finish();
  EXPECT_EQ(err.str().find('\r'), std::string::npos);
  EXPECT_NE(err.str().find("downloading config.json (561 B)\n"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("downloaded config.json: 561 B"), std::string::npos) << err.str();
}

}  // namespace
