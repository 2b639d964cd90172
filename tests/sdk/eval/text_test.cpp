#include "llm/eval/text.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "llm/eval/task_data.hpp"
#include "support/test_support.hpp"

namespace llm {
namespace {

TEST(WikitextDetokenize, JoinsNumberSeparatorsAndPunctuation) {
  EXPECT_EQ(wikitext_detokenize(" 19th @-@ century , 23 @.@ 5 metres ; 1 @,@ 000 . "),
            " 19th-century, 23.5 metres; 1,000. ");
  EXPECT_EQ(wikitext_detokenize("The keeper 's cottage"), "The keeper's cottage");
  EXPECT_EQ(wikitext_detokenize("the ships ' crews"), "the ships' crews");
  EXPECT_EQ(wikitext_detokenize("Who ? Me ! Yes : no"), "Who? Me! Yes: no");
}

TEST(WikitextDetokenize, StripsInsideBracketsAndQuotesPairingEachOpenerWithTheNextCloser) {
  EXPECT_EQ(wikitext_detokenize("( 77 ft ) and [ x ] and { y }"), "(77 ft) and [x] and {y}");
  EXPECT_EQ(wikitext_detokenize("\" quoted \" then \" again \""), "\"quoted\" then \"again\"");
  EXPECT_EQ(wikitext_detokenize("( a ( b ) c )"), "(a ( b) c )");
  EXPECT_EQ(wikitext_detokenize("( unclosed"), "( unclosed");
  // Python's \s includes no-break space (U+00A0).
  EXPECT_EQ(wikitext_detokenize("(\u00a0x\u00a0)"), "(x)");
}

TEST(WikitextDetokenize, CollapsesHeadingsDegreesAndLineSpaces) {
  EXPECT_EQ(wikitext_detokenize(" = Title = \n \n = = History = = \n \n = = = Early = = = \n "),
            " = Title =\n\n== History ==\n\n=== Early ===\n");
  EXPECT_EQ(wikitext_detokenize("12 \u00b0 C"), "12\u00b0C");
  EXPECT_EQ(wikitext_detokenize("a N b"), "a 1 b");
  EXPECT_EQ(wikitext_detokenize("/' 5/"), "/'[0-9]/");  // the harness's literal replacement
}

TEST(PythonText, WordCountIsOnePlusWhitespaceRuns) {
  EXPECT_EQ(python_split_word_count(""), 1u);
  EXPECT_EQ(python_split_word_count("one"), 1u);
  EXPECT_EQ(python_split_word_count(" = Title = \n \n Text . \n "), 5u + 2u);
  EXPECT_EQ(python_split_word_count("a\u3000b"), 2u);
}

TEST(PythonText, TrailingWhitespaceAndCodePoints) {
  EXPECT_EQ(trailing_whitespace_bytes("is \t\n"), 3u);
  EXPECT_EQ(trailing_whitespace_bytes("x\u00a0"), 2u);
  EXPECT_EQ(trailing_whitespace_bytes("none"), 0u);
  EXPECT_EQ(code_point_count("\u22125 \u00b0C"), 5u);  // "−5 °C"
  EXPECT_TRUE(python_isspace(0x85));
  EXPECT_FALSE(python_isspace(0x200b));  // zero-width space is not whitespace in Python
}

TEST(PythonText, WikitextWordsAndBytesMatchTheGoldenDetails) {
  const auto pages = read_task_jsonl(test::data_dir() / "eval-data" / "wikitext.jsonl");
  std::ifstream details(test::data_dir() / "golden" / "eval" / "tiny-pythia-len128-details.jsonl");
  std::string line;
  int checked = 0;
  while (std::getline(details, line)) {
    const auto record = Json::parse(line);
    if (record["task"] != "wikitext" || !record.contains("words")) continue;
    const auto& page = pages.at(record["source_index"].get<std::size_t>()).json["page"];
    EXPECT_EQ(python_split_word_count(page.get<std::string>()), record["words"].get<std::size_t>());
    EXPECT_EQ(page.get<std::string>().size(), record["bytes"].get<std::size_t>());
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace llm
