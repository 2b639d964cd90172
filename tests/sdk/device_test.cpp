#include "llm/device.hpp"

#include <gtest/gtest.h>

#include <torch/cuda.h>

#include "llm/error.hpp"
#include "support/test_support.hpp"

namespace {

using llm::test::user_error_of;

TEST(Device, ParsesCpuInAnyCase) {
  EXPECT_EQ(llm::parse_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_EQ(llm::parse_device(" CPU "), torch::Device(torch::kCPU));
}

TEST(Device, RejectsMalformedNamesNamingTheFlag) {
  for (const char* text : {"", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "cpu:0", "cudaa"}) {
    const auto message = user_error_of([&] { llm::parse_device(text); });
    EXPECT_NE(message.find("--device"), std::string::npos) << text << ": " << message;
  }
}

TEST(Device, CudaIsParsedWhenPresentAndAUserErrorWhenAbsent) {
  if (torch::cuda::is_available()) {
    EXPECT_TRUE(llm::parse_device("cuda").is_cuda());
    EXPECT_EQ(llm::parse_device("cuda:0"), torch::Device(torch::kCUDA, 0));
  } else {
    for (const char* text : {"cuda", "cuda:0"}) {
      const auto message = user_error_of([&] { llm::parse_device(text); });
      EXPECT_NE(message.find("--device"), std::string::npos) << message;
      EXPECT_NE(message.find("no CUDA device"), std::string::npos) << message;
    }
  }
}

TEST(Device, CudaIndexPastTheVisibleDevicesIsAUserError) {
  const auto message = user_error_of([] { llm::parse_device("cuda:999"); });
  EXPECT_NE(message.find("--device 'cuda:999'"), std::string::npos) << message;
}

TEST(Device, PrecisionAcceptsShortAndLitGptSpellings) {
  const torch::Device cpu(torch::kCPU);
  EXPECT_EQ(llm::parse_precision("fp32", cpu), torch::kFloat);
  EXPECT_EQ(llm::parse_precision("32-true", cpu), torch::kFloat);
  EXPECT_EQ(llm::parse_precision("bf16", cpu), torch::kBFloat16);
  EXPECT_EQ(llm::parse_precision("bf16-true", cpu), torch::kBFloat16);
  EXPECT_EQ(llm::parse_precision("fp16", cpu), torch::kHalf);
  EXPECT_EQ(llm::parse_precision("16-true", cpu), torch::kHalf);
}

TEST(Device, EmptyPrecisionIsBf16OnCudaAndFp32OnCpu) {
  EXPECT_EQ(llm::parse_precision("", torch::Device(torch::kCPU)), torch::kFloat);
  EXPECT_EQ(llm::parse_precision("", torch::Device(torch::kCUDA, 0)), torch::kBFloat16);
}

TEST(Device, UnknownPrecisionIsAUserErrorNamingTheFlag) {
  const auto message = user_error_of([] { llm::parse_precision("int4", torch::kCPU); });
  EXPECT_NE(message.find("--precision 'int4'"), std::string::npos) << message;
}

TEST(Device, PrecisionNamesRoundTrip) {
  for (const auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    EXPECT_EQ(llm::parse_precision(llm::precision_name(dtype), torch::kCPU), dtype);
  }
}

}  // namespace
