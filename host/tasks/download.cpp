// --task download: a Hugging Face hub repo's files into CHECKPOINT_DIR/ORG/NAME, resumably.
#include <unistd.h>

#include <cstdlib>
#include <ostream>

#include "download/hub_downloader.hpp"
#include "download/progress_bar.hpp"
#include "llm/error.hpp"
#include "llm/json_file.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::download_task {
namespace {

namespace dl = download;

void declare(po::options_description& o) {
  o.add_options()                                                                             //
      ("repo_id", po::value<std::string>()->required(), "hub repo, ORG/NAME")                 //
      ("repo_type", po::value<std::string>()->default_value("model"), "model | dataset")      //
      ("revision", po::value<std::string>()->default_value("main"), "branch, tag or commit")  //
      ("checkpoint_dir", po::value<std::string>()->default_value("checkpoints"),
       "files go to CHECKPOINT_DIR/ORG/NAME")  //
      ("include", po::value<std::string>(),
       "comma-separated file patterns, e.g. \"*.safetensors,*.json,tokenizer.model\" (default: "
       "what a model plugin loads; a dataset's *.jsonl and *.json)")  //
      ("access_token", po::value<std::string>(),
       "hub token for gated or private repos (default: $HF_TOKEN)")  //
      ("max_retries", po::value<int>()->default_value(5),
       "retries after a network failure, with exponential backoff")  //
      ("retry_delay_ms", po::value<int>()->default_value(1000), "first backoff delay; doubles");
}

std::string access_token(const TaskContext& ctx) {
  if (ctx.has("access_token")) return ctx.get<std::string>("access_token");
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return value;
  }
  return "";
}

dl::RetryPolicy retry_policy(const TaskContext& ctx) {
  dl::RetryPolicy policy;
  policy.max_retries = ctx.get<int>("max_retries");
  const int delay_ms = ctx.get<int>("retry_delay_ms");
  if (policy.max_retries < 0 || policy.max_retries > 100) {
    throw llm::UserError("--max_retries must be between 0 and 100");
  }
  if (delay_ms < 0 || delay_ms > 600000) {
    throw llm::UserError("--retry_delay_ms must be between 0 and 600000");
  }
  policy.first_delay = std::chrono::milliseconds(delay_ms);
  return policy;
}

std::string joined(const std::vector<std::string>& items, size_t limit) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > limit) out += ", ...";
  return out;
}

int run(TaskContext& ctx) {
  dl::DownloadOptions options;
  options.repo.repo_id = ctx.get<std::string>("repo_id");
  dl::check_repo_id(options.repo.repo_id);
  options.repo.type = dl::parse_repo_type(ctx.get<std::string>("repo_type"));
  options.repo.revision = ctx.get<std::string>("revision");
  if (options.repo.revision.empty()) throw llm::UserError("--revision must not be empty");
  options.endpoint = dl::hub_endpoint();
  options.bearer_token = access_token(ctx);
  options.retry = retry_policy(ctx);
  options.interactive = ::isatty(STDERR_FILENO) == 1;

  const bool explicit_include = ctx.has("include");
  const auto patterns = explicit_include ? dl::split_patterns(ctx.get<std::string>("include"))
                                         : dl::default_include(options.repo.type);
  if (patterns.empty()) throw llm::UserError("--include names no file pattern");

  dl::HubDownloader downloader(options, ctx.err());
  const auto listed = downloader.list_files();
  // Without --include the user wants a loadable model; say why a pickle-only repo is not one.
  if (options.repo.type == dl::RepoType::kModel && !explicit_include) {
    dl::require_safetensors(listed, options.repo);
  }
  const auto selected = dl::select_files(listed, patterns);
  if (selected.empty()) {
    std::vector<std::string> names;
    for (const auto& f : listed) names.push_back(f.name);
    throw llm::UserError("no file of " + dl::describe(options.repo) + " matches --include \"" +
                         joined(patterns, 20) + "\" (the repo has: " + joined(names, 20) + ")");
  }

  const std::filesystem::path destination =
      std::filesystem::path(ctx.get<std::string>("checkpoint_dir")) / options.repo.repo_id;
  llm::Json files = llm::Json::array();
  uint64_t total_bytes = 0;
  uint64_t transferred = 0;
  for (const auto& file : selected) {
    const auto report = downloader.download(file, destination);
    total_bytes += report.size;
    transferred += report.bytes_transferred;
    files.push_back(
        {{"name", report.name}, {"size", report.size}, {"status", dl::to_string(report.status)}});
    if (report.status == dl::FileStatus::kAlreadyPresent && !ctx.json_output()) {
      ctx.err() << report.name << ": already present\n";
    }
  }

  if (ctx.json_output()) {
    const llm::Json result{{"repo_id", options.repo.repo_id},
                           {"repo_type", ctx.get<std::string>("repo_type")},
                           {"revision", options.repo.revision},
                           {"destination", destination.string()},
                           {"files", files},
                           {"bytes", total_bytes},
                           {"bytes_transferred", transferred}};
    ctx.out() << result.dump() << "\n";
    return llm::kExitOk;
  }
  ctx.out() << selected.size() << " file" << (selected.size() == 1 ? "" : "s") << " ("
            << dl::format_bytes(total_bytes) << ") of " << dl::describe(options.repo) << " in "
            << destination.string() << "\n";
  return llm::kExitOk;
}

const bool registered = register_task(
    {"download", "fetch a model or dataset from the Hugging Face hub (resumable)", declare, run});

}  // namespace
}  // namespace llmhost::download_task
