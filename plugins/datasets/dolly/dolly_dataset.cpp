// Dolly-15k as published (databricks-dolly-15k.jsonl): one JSON object per line with
// instruction, context, response, category. context becomes the Alpaca `input`.
#include <fstream>
#include <limits>
#include <memory>
#include <string>

#include "llm/dataset.hpp"
#include "llm/error.hpp"
#include "llm/json_file.hpp"
#include "llm/plugin.hpp"

namespace {

// Dolly's longest record is ~30 KB; a line this long is not a record but a broken or hostile file,
// and reading it whole would take its size in memory.
constexpr std::streamsize kMaxLineBytes = 16 << 20;

enum class LineRead { kLine, kEnd, kTooLong };

// std::getline without the unbounded buffer: an over-long line is skipped up to its newline.
// `buffer` holds kMaxLineBytes + 1 chars (left uninitialised: pages are touched only when used).
LineRead read_bounded_line(std::istream& in, char* buffer, std::string& line) {
  in.getline(buffer, kMaxLineBytes + 1);
  const std::streamsize got = in.gcount();
  if (in.fail() && !in.eof() && got == kMaxLineBytes) {  // buffer full before a newline
    in.clear();
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    return LineRead::kTooLong;
  }
  if (got == 0 && (in.eof() || in.fail())) return LineRead::kEnd;
  const bool had_newline = !in.eof();
  line.assign(buffer, static_cast<size_t>(got - (had_newline ? 1 : 0)));
  in.clear(in.rdstate() & std::ios::eofbit);
  return LineRead::kLine;
}

class DollyDataset final : public llm::Dataset {
 public:
  std::string name() const override { return "dolly"; }

  llm::DatasetReadResult read(const std::filesystem::path& file,
                              const llm::DatasetReadOptions& options) const override {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw llm::UserError("--data_file '" + file.string() + "': cannot open the file");
    llm::DatasetReadResult result;
    std::string line;
    int64_t line_number = 0;
    const std::unique_ptr<char[]> buffer(new char[static_cast<size_t>(kMaxLineBytes) + 1]);
    for (LineRead status; (status = read_bounded_line(in, buffer.get(), line)) != LineRead::kEnd;) {
      ++line_number;
      if (status == LineRead::kTooLong) {
        const std::string problem =
            "line longer than " + std::to_string(kMaxLineBytes >> 20) + " MiB (not a Dolly record)";
        if (!options.skip_bad_records) {
          throw llm::UserError(file.string() + ":" + std::to_string(line_number) + ": " + problem +
                               " (or pass --skip_bad_records)");
        }
        ++result.skipped_records;
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      std::string problem;
      auto example = parse(line, problem);
      if (!problem.empty()) {
        if (!options.skip_bad_records) {
          throw llm::UserError(file.string() + ":" + std::to_string(line_number) + ": " + problem +
                               " (or pass --skip_bad_records)");
        }
        ++result.skipped_records;
        continue;
      }
      example.source_line = line_number;
      result.examples.push_back(std::move(example));
    }
    return result;
  }

 private:
  // Empty `problem` on success.
  static llm::InstructionExample parse(const std::string& line, std::string& problem) {
    llm::InstructionExample example;
    const auto record = llm::Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) {
      problem = "not a JSON object";
      return example;
    }
    auto field = [&](const char* key, std::string& target) {
      if (!problem.empty()) return;
      const auto it = record.find(key);
      if (it == record.end() || !it->is_string()) {
        problem = std::string("expected a string field '") + key + "'";
        return;
      }
      target = it->get<std::string>();
    };
    field("instruction", example.instruction);
    field("context", example.input);
    field("response", example.output);
    return example;
  }
};

void register_dolly(llm::Registrar& registrar) {
  registrar.add_dataset(std::make_shared<DollyDataset>());
}

}  // namespace

LLMHOST_PLUGIN(kDataset, "dolly", "0.1.0", "Dolly-15k instruction data (JSONL)", register_dolly)
