#include "llm/eval/task_data.hpp"

#include <fstream>
#include <numeric>

#include "llm/error.hpp"

namespace llm {

std::vector<TaskRecord> read_task_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw UserError(
        path.string() +
        ": task data file not found (expected one JSON object per line; see --data_dir)");
  }
  std::vector<TaskRecord> records;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(number);
    Json json = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) throw UserError(where + ": not valid JSON");
    if (!json.is_object()) throw UserError(where + ": expected a JSON object");
    records.push_back({std::move(json), where});
  }
  if (records.empty()) throw UserError(path.string() + ": no records (the task has no documents)");
  return records;
}

const Json& record_field(const TaskRecord& record, const std::string& key) {
  const auto it = record.json.find(key);
  if (it == record.json.end()) throw UserError(record.where + ": missing field '" + key + "'");
  return *it;
}

std::string record_string(const TaskRecord& record, const std::string& key) {
  const Json& value = record_field(record, key);
  if (!value.is_string()) throw UserError(record.where + ": field '" + key + "' must be a string");
  return value.get<std::string>();
}

std::vector<std::string> record_strings(const TaskRecord& record, const Json& array,
                                        const std::string& key) {
  if (!array.is_array() || array.empty()) {
    throw UserError(record.where + ": field '" + key + "' must be a non-empty list of strings");
  }
  std::vector<std::string> out;
  for (const auto& item : array) {
    if (!item.is_string()) {
      throw UserError(record.where + ": field '" + key + "' must be a list of strings");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<std::size_t> harness_document_order(std::size_t count, int64_t limit) {
  std::vector<std::size_t> order(count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  PythonRandom rnd(42);
  rnd.shuffle(order);
  if (limit >= 0 && static_cast<std::size_t>(limit) < count) {
    order.resize(static_cast<std::size_t>(limit));
  }
  return order;
}

// CPython Modules/_randommodule.c: init_genrand(19650218) then init_by_array(key = [seed]).
PythonRandom::PythonRandom(uint32_t seed) {
  constexpr int kN = 624;
  state_[0] = 19650218U;
  for (int i = 1; i < kN; ++i) {
    state_[i] = 1812433253U * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
  int i = 1;
  for (int k = kN; k > 0; --k) {
    state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1664525U)) + seed;
    if (++i >= kN) {
      state_[0] = state_[kN - 1];
      i = 1;
    }
  }
  for (int k = kN - 1; k > 0; --k) {
    state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1566083941U)) -
                static_cast<uint32_t>(i);
    if (++i >= kN) {
      state_[0] = state_[kN - 1];
      i = 1;
    }
  }
  state_[0] = 0x80000000U;
  index_ = kN;
}

uint32_t PythonRandom::next_uint32() {
  constexpr int kN = 624;
  constexpr int kM = 397;
  if (index_ >= kN) {
    for (int k = 0; k < kN; ++k) {
      const uint32_t y = (state_[k] & 0x80000000U) | (state_[(k + 1) % kN] & 0x7fffffffU);
      state_[k] = state_[(k + kM) % kN] ^ (y >> 1) ^ ((y & 1U) ? 0x9908b0dfU : 0U);
    }
    index_ = 0;
  }
  uint32_t y = state_[index_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

uint64_t PythonRandom::below(uint64_t bound) {
  int bits = 0;
  for (uint64_t b = bound; b != 0; b >>= 1) ++bits;
  // Task sizes stay far below 2^32, where getrandbits(k) is one draw shifted.
  while (true) {
    const uint64_t r = next_uint32() >> (32 - bits);
    if (r < bound) return r;
  }
}

}  // namespace llm
