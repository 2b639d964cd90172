// --task report: side-by-side result files; differences within the combined standard error are
// "statistically indistinguishable".
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"
#include "support/xml_parse.hpp"

namespace llm {
namespace {

namespace fs = std::filesystem;
using test::run_llmhost;
using test::TempDir;

fs::path write_results(const TempDir& dir, const std::string& name, double acc, double mc2,
                       double perplexity) {
  const auto path = dir.path() / name;
  std::ofstream(path) << Json{
      {"results",
       {{"openbookqa", {{"acc", acc}, {"acc_stderr", 0.02}}},
        {"truthfulqa_mc", {{"mc2", mc2}, {"mc2_stderr", 0.015}}},
        {"wikitext", {{"word_perplexity", perplexity}}}}},
      {"versions", {{"openbookqa", 0}}},
      {"config",
       Json::object()}}.dump();
  return path;
}

TEST(ReportCli, MarksDifferencesWithinTheCombinedStderrAsIndistinguishable) {
  TempDir dir;
  const auto base = write_results(dir, "base.json", 0.162, 0.4460, 33.443);
  // openbookqa moves 0.004 (< sqrt(2) * 0.02); mc2 moves 0.1 (> sqrt(2) * 0.015).
  const auto tuned = write_results(dir, "tuned.json", 0.158, 0.3460, 33.433);
  const auto r = run_llmhost(
      {"--task", "report", "--inputs", base.string() + "," + tuned.string(), "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = Json::parse(r.out);
  std::map<std::string, std::string> verdicts;
  for (const auto& row : report["rows"]) {
    verdicts[row["task"].get<std::string>() + "/" + row["metric"].get<std::string>()] =
        row["comparisons"][0].get<std::string>();
  }
  EXPECT_EQ(verdicts["openbookqa/acc"], "statistically indistinguishable");
  EXPECT_EQ(verdicts["truthfulqa_mc/mc2"], "different");
  EXPECT_EQ(verdicts["wikitext/word_perplexity"], "no stderr");
}

TEST(ReportCli, MarkdownAndHtmlTablesShowBothFilesSideBySide) {
  TempDir dir;
  const auto a = write_results(dir, "a.json", 0.162, 0.4460, 33.443);
  const auto b = write_results(dir, "b.json", 0.158, 0.4328, 33.433);
  const auto md = run_llmhost({"--task", "report", "--inputs", a.string() + "," + b.string()});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_NE(md.out.find("| openbookqa | acc | 0.1620 ± 0.0200 | 0.1580 ± 0.0200 | statistically "
                        "indistinguishable |"),
            std::string::npos)
      << md.out;
  const auto html = run_llmhost(
      {"--task", "report", "--inputs", a.string() + "," + b.string(), "--format", "html"});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  EXPECT_NE(html.out.find("<td>33.4330</td>"), std::string::npos) << html.out;
}

// The chart parses as XML (file names with markup characters included), has one bar per value with
// the value it stands for, and the same verdicts as the table.
TEST(ReportCli, SvgChartIsWellFormedWithEveryValueAndVerdict) {
  TempDir dir;
  const auto base = write_results(dir, "base&<1>.json", 0.162, 0.4460, 33.443);
  const auto tuned = write_results(dir, "tuned.json", 0.158, 0.3460, 33.433);
  const auto svg_path = dir.path() / "compare.svg";
  const auto r = run_llmhost({"--task", "report", "--inputs", base.string() + "," + tuned.string(),
                              "--svg", svg_path.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| openbookqa | acc |"), std::string::npos) << "the table still printed";
  test::XmlElement root;
  ASSERT_NO_THROW(root = test::parse_xml(test::read_file_bytes(svg_path)));
  EXPECT_EQ(root.name, "svg");
  std::map<std::string, double> bars;
  for (const auto* bar : root.find_all("rect", "bar")) {
    bars[bar->attribute("data-task") + "/" + bar->attribute("data-metric") + "/" +
         bar->attribute("data-file")] = std::stod(bar->attribute("data-value"));
  }
  const std::map<std::string, double> expected{{"openbookqa/acc/0", 0.162},
                                               {"openbookqa/acc/1", 0.158},
                                               {"truthfulqa_mc/mc2/0", 0.446},
                                               {"truthfulqa_mc/mc2/1", 0.346},
                                               {"wikitext/word_perplexity/0", 33.443},
                                               {"wikitext/word_perplexity/1", 33.433}};
  EXPECT_EQ(bars, expected);
  std::vector<std::string> verdicts;
  for (const auto* v : root.find_all("text", "verdict")) verdicts.push_back(v->text);
  EXPECT_EQ(verdicts, (std::vector<std::string>{"statistically indistinguishable", "different",
                                                "no stderr"}));
  EXPECT_NE(root.find_all("text").front()->text.find("± standard error"), std::string::npos);
  bool legend_names_base = false;
  for (const auto* t : root.find_all("text")) {
    legend_names_base |= t->text.find("base&<1>.json (baseline)") != std::string::npos;
  }
  EXPECT_TRUE(legend_names_base);
}

TEST(ReportCli, SvgIntoAMissingDirectoryIsABadInputError) {
  TempDir dir;
  const auto base = write_results(dir, "base.json", 0.162, 0.4460, 33.443);
  const auto r = run_llmhost({"--task", "report", "--inputs", base.string(), "--svg",
                              (dir.path() / "no-such-dir" / "c.svg").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--svg"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no-such-dir"), std::string::npos) << r.err;
}

TEST(ReportCli, UnreadableInputIsABadInputError) {
  TempDir dir;
  std::ofstream(dir.path() / "broken.json") << "{\"no_results\": 1}";
  const auto missing =
      run_llmhost({"--task", "report", "--inputs", (dir.path() / "nope.json").string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope.json"), std::string::npos) << missing.err;
  const auto broken =
      run_llmhost({"--task", "report", "--inputs", (dir.path() / "broken.json").string()});
  EXPECT_EQ(broken.exit_code, 2);
  EXPECT_NE(broken.err.find("broken.json: not a results file"), std::string::npos) << broken.err;
}

}  // namespace
}  // namespace llm
