#include "llm/json_file.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "llm/error.hpp"
#include "support/test_support.hpp"

namespace {

using llm::test::TempDir;

using llm::test::user_error_of;

TEST(JsonFile, ReadsAFixtureConfig) {
  const auto json = llm::read_json_file(llm::test::data_dir() / "tiny-llama" / "config.json");
  EXPECT_EQ(json.at("model_type"), "llama");
}

TEST(JsonFile, MissingFileIsAUserErrorNamingIt) {
  const auto message = user_error_of([] { llm::read_json_file("/nonexistent/conf.json"); });
  EXPECT_NE(message.find("/nonexistent/conf.json"), std::string::npos) << message;
  EXPECT_NE(message.find("not found"), std::string::npos) << message;
}

TEST(JsonFile, ParseErrorNamesFileAndBytePosition) {
  TempDir dir;
  const auto path = dir.path() / "broken.json";
  std::ofstream(path) << "{\"a\": 1,, }";
  const auto message = user_error_of([&] { llm::read_json_file(path); });
  EXPECT_NE(message.find("broken.json"), std::string::npos) << message;
  EXPECT_NE(message.find("at byte 9"), std::string::npos) << message;
  EXPECT_EQ(message.find("[json.exception"), std::string::npos) << message;
}

TEST(JsonFile, TypedAccessorsReturnValuesAndFallbacks) {
  const llm::Json j = {{"n", 12},   {"f", 12.0}, {"x", 0.5},
                       {"b", true}, {"s", "hi"}, {"z", nullptr}};
  EXPECT_EQ(llm::json_int(j, "n", "c.json"), 12);
  EXPECT_EQ(llm::json_int(j, "f", "c.json"), 12);       // integral float
  EXPECT_EQ(llm::json_int_or(j, "z", 5, "c.json"), 5);  // null means unset
  EXPECT_EQ(llm::json_int_or(j, "absent", 6, "c.json"), 6);
  EXPECT_EQ(llm::json_number_or(j, "x", 1.0, "c.json"), 0.5);
  EXPECT_EQ(llm::json_number_or(j, "n", 1.0, "c.json"), 12.0);
  EXPECT_TRUE(llm::json_bool_or(j, "b", false, "c.json"));
  EXPECT_EQ(llm::json_string_or(j, "s", "", "c.json"), "hi");
  EXPECT_EQ(llm::json_string_or(j, "absent", "dflt", "c.json"), "dflt");
}

TEST(JsonFile, WrongTypesNameTheSourceAndKey) {
  const llm::Json j = {{"x", 0.5}, {"s", "64"}, {"big", UINT64_MAX}, {"list", {1, 2}}};
  const std::vector<std::pair<std::string, std::string>> messages = {
      {user_error_of([&] { llm::json_int(j, "x", "c.json"); }), "'x' must be an integer"},
      {user_error_of([&] { llm::json_int(j, "s", "c.json"); }), "'s' must be an integer"},
      {user_error_of([&] { llm::json_int(j, "big", "c.json"); }), "'big' is too large"},
      {user_error_of([&] { llm::json_int(j, "absent", "c.json"); }), "'absent'"},
      {user_error_of([&] { llm::json_number_or(j, "s", 0, "c.json"); }), "'s' must be a number"},
      {user_error_of([&] { llm::json_bool_or(j, "x", false, "c.json"); }), "'x' must be true"},
      {user_error_of([&] { llm::json_string_or(j, "list", "", "c.json"); }), "an array"},
  };
  for (const auto& [message, expected] : messages) {
    EXPECT_EQ(message.rfind("c.json: ", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos)
        << "'" << expected << "' not in " << message;
  }
}

}  // namespace
