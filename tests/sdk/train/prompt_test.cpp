#include "llm/train/prompt.hpp"

#include <gtest/gtest.h>

namespace {

TEST(AlpacaPrompt, WithInputIsTheTutorialTemplate) {
  EXPECT_EQ(llm::alpaca_prompt("Add.", "1 and 2"),
            "Below is an instruction that describes a task, paired with an input that provides "
            "further context. Write a response that appropriately completes the request.\n\n"
            "### Instruction:\nAdd.\n\n### Input:\n1 and 2\n\n### Response:");
}

TEST(AlpacaPrompt, WithoutInputIsTheShortTemplate) {
  EXPECT_EQ(llm::alpaca_prompt("Say hi.", ""),
            "Below is an instruction that describes a task. Write a response that appropriately "
            "completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:");
}

}  // namespace
