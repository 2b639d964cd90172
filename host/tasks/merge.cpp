// --task merge: base checkpoint + LoRA adapter -> a complete Hugging Face directory.
#include <ostream>
#include <set>

#include "llm/atomic_file.hpp"
#include "llm/error.hpp"
#include "llm/model_config.hpp"
#include "llm/safetensors.hpp"
#include "output_path.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::merge_task {
namespace {

namespace fs = std::filesystem;

// Everything of a checkpoint directory except its weights.
const char* const kCopiedFiles[] = {"config.json",
                                    "generation_config.json",
                                    "tokenizer.json",
                                    "tokenizer.model",
                                    "tokenizer_config.json",
                                    "special_tokens_map.json",
                                    "added_tokens.json",
                                    "vocab.json",
                                    "merges.txt"};

void declare(po::options_description& o) {
  add_checkpoint_option(o);
  o.add_options()  //
      ("lora_path", po::value<std::string>()->required(),
       "adapter directory (adapter_config.json + adapter_model.safetensors)")  //
      ("out_dir", po::value<std::string>()->required(), "merged checkpoint directory");
  add_quantize_option(o);
}

// The dtype the base weights are stored in (the merged model keeps it).
torch::ScalarType stored_dtype(const fs::path& checkpoint_dir) {
  const auto checkpoint = llm::SafetensorsCheckpoint::open(checkpoint_dir);
  for (const auto& name : checkpoint.names()) {
    const auto dtype = checkpoint.info(name).dtype;
    if (c10::isFloatingType(dtype)) return dtype;
  }
  return torch::kFloat;
}

int run(TaskContext& ctx) {
  const fs::path checkpoint_dir = ctx.get<std::string>("checkpoint_dir");
  const fs::path lora_path = ctx.get<std::string>("lora_path");
  const fs::path out_dir = ctx.get<std::string>("out_dir");
  if (!fs::is_directory(lora_path)) {
    throw llm::UserError("--lora_path '" + lora_path.string() + "' is not a directory");
  }
  // The merged directory is swapped in as a whole: it may neither be nor hold an input.
  const FlagPath output{"out_dir", out_dir};
  refuse_aliasing(output, {{"checkpoint_dir", checkpoint_dir}, {"lora_path", lora_path}},
                  /*replaced_whole=*/true);
  create_output_parent(output);
  // --plugin names the adapter; otherwise the directory's adapter_config.json peft_type does.
  const auto adapter = ctx.has("plugin") ? ctx.registry().adapter(ctx.plugin(false))
                                         : adapter_for_directory(ctx, "lora_path");
  const auto dtype = stored_dtype(checkpoint_dir);
  const auto quantize = task_quantize(ctx);
  auto loaded = load_model(ctx.registry(), checkpoint_dir, torch::kCPU, dtype, false, 0, quantize);
  adapter->load(*loaded.model, lora_path);
  if (quantize != llm::QuantizeScheme::kNone) {
    // An adapter trained over NF4 weights learnt a correction to those weights: merging into the
    // originals would apply it to weights it never saw.
    const auto expanded = llm::expand_compressed_linears(*loaded.model, dtype);
    ctx.err() << "merge: --quantize " << llm::quantize_name(quantize)
              << ": merging into the DEQUANTIZED base weights (" << expanded
              << " Linear layers rounded to NF4 and back), not the checkpoint's original ones; "
                 "the merged model carries that quantization error\n";
  }
  adapter->merge(*loaded.model);

  // Assemble under a temporary name beside out_dir, then rename: never a half-written model.
  // Normalised, so that a trailing slash ("out/merged/") still names the directory itself.
  fs::path target = fs::absolute(out_dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  report_removed_leftovers(
      llm::remove_dead_temporaries(target.parent_path(), target.filename().string()), ctx.err());
  const fs::path temp = llm::temp_directory_for(target);
  fs::remove_all(temp);
  fs::create_directories(temp);
  try {
    // A tensor shared under two names (a head tied to the embedding) is written once, under its
    // first name, as transformers writes tied weights: the file then has the base's names.
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    std::set<const void*> written;
    for (const auto& item : loaded.model->named_parameters()) {
      const auto& value = item.value();
      if (value.numel() > 0 && !written.insert(value.data_ptr()).second) continue;
      tensors.emplace_back(item.key(), value.detach());
    }
    llm::write_safetensors(temp / "model.safetensors", tensors, {{"format", "pt"}});
    for (const char* name : kCopiedFiles) {
      if (fs::exists(checkpoint_dir / name))
        llm::copy_file_durable(checkpoint_dir / name, temp / name);
    }
    llm::replace_directory(temp, target);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw;
  }
  if (ctx.json_output()) {
    ctx.out() << llm::Json{{"out_dir", out_dir.string()},
                           {"dtype", llm::safetensors_dtype_name(dtype)}}
                     .dump()
              << "\n";
  } else {
    ctx.out() << "merged " << lora_path.string() << " into " << out_dir.string() << " ("
              << llm::safetensors_dtype_name(dtype) << ")\n";
  }
  return llm::kExitOk;
}

const bool registered = register_task(
    {"merge", "fold a LoRA adapter into the base weights; writes a Hugging Face directory", declare,
     run});

}  // namespace
}  // namespace llmhost::merge_task
