// Alpaca as published (alpaca_data_cleaned_archive.json): one JSON array of objects with
// instruction, input, output.
#include <cstdint>
#include <string>
#include <system_error>

#include "llm/dataset.hpp"
#include "llm/error.hpp"
#include "llm/json_file.hpp"
#include "llm/plugin.hpp"

namespace {

// The file is one JSON array parsed whole (the DOM takes several times the file size); the
// published Alpaca sets are ~40 MB. Bigger files belong in JSONL (the dolly plugin reads lines).
constexpr std::uintmax_t kMaxFileBytes = std::uintmax_t{1} << 30;

class AlpacaDataset final : public llm::Dataset {
 public:
  std::string name() const override { return "alpaca"; }

  llm::DatasetReadResult read(const std::filesystem::path& file,
                              const llm::DatasetReadOptions& options) const override {
    std::error_code size_error;
    const auto size = std::filesystem::file_size(file, size_error);
    if (!size_error && size > kMaxFileBytes) {
      throw llm::UserError(file.string() + ": " + std::to_string(size >> 20) +
                           " MiB is more than the 1024 MiB an Alpaca JSON array may have; write "
                           "the records as JSONL (one object per line) instead");
    }
    const llm::Json records = llm::read_json_file(file);  // UserError with the byte position
    if (!records.is_array()) {
      throw llm::UserError(file.string() +
                           ": expected a JSON array of {instruction, input, output}");
    }
    llm::DatasetReadResult result;
    int64_t index = 0;
    for (const auto& record : records) {
      ++index;
      const std::string problem = check(record);
      if (!problem.empty()) {
        if (!options.skip_bad_records) {
          throw llm::UserError(file.string() + ": record " + std::to_string(index) + ": " +
                               problem + " (or pass --skip_bad_records)");
        }
        ++result.skipped_records;
        continue;
      }
      llm::InstructionExample example;
      example.instruction = record["instruction"].get<std::string>();
      example.input = record.contains("input") ? record["input"].get<std::string>() : "";
      example.output = record["output"].get<std::string>();
      example.source_line = index;
      result.examples.push_back(std::move(example));
    }
    return result;
  }

 private:
  static std::string check(const llm::Json& record) {
    if (!record.is_object()) return "not a JSON object";
    for (const char* key : {"instruction", "output"}) {
      if (!record.contains(key) || !record[key].is_string()) {
        return std::string("expected a string field '") + key + "'";
      }
    }
    if (record.contains("input") && !record["input"].is_string()) {
      return "field 'input' must be a string";
    }
    return "";
  }
};

void register_alpaca(llm::Registrar& registrar) {
  registrar.add_dataset(std::make_shared<AlpacaDataset>());
}

}  // namespace

LLMHOST_PLUGIN(kDataset, "alpaca", "0.1.0", "Alpaca instruction data (JSON array)", register_alpaca)
