#include "llm/eval/results.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "support/test_support.hpp"

namespace llm {
namespace {

TEST(PythonFloatRepr, MatchesCPythonRepr) {
  // Expected strings are CPython's repr() of the same doubles.
  const std::vector<std::pair<double, std::string>> cases{
      {0.16329931618554522, "0.16329931618554522"},
      {168999159.48479977, "168999159.48479977"},
      {3.2e-05, "3.2e-05"},
      {0.0, "0.0"},
      {1.0, "1.0"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {-0.5, "-0.5"},
      {0.0001, "0.0001"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {6436686661.079508, "6436686661.079508"},
      {100.0, "100.0"}};
  for (const auto& [value, text] : cases) EXPECT_EQ(python_float_repr(value), text);
  EXPECT_EQ(python_float_repr(std::nan("")), "NaN");
}

TEST(PythonJsonDumps, ReproducesEveryGoldenResultsFileByteForByte) {
  for (const auto& entry :
       std::filesystem::directory_iterator(test::data_dir() / "golden" / "eval")) {
    const auto name = entry.path().filename().string();
    if (name.find("-details") != std::string::npos) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    const auto parsed = OrderedJson::parse(text.str());
    EXPECT_EQ(python_json_dumps(parsed), text.str()) << name;
  }
}

}  // namespace
}  // namespace llm
