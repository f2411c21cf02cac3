// ParsePolicyAll, what `tierctl policy check` reports: every independent
// mistake of a policy file, each at its line and column, not only the first.
#include <gtest/gtest.h>

#include "policy/policy.h"

namespace tierfs {
namespace {

std::vector<std::string> Errors(const std::string& text) {
  Policy policy;
  std::vector<Status> errors;
  ParsePolicyAll(text, "p.toml", &policy, &errors);
  std::vector<std::string> out;
  for (const Status& st : errors) out.push_back(st.message());
  return out;
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

TEST(PolicyCheck, ThreeIndependentErrorsAreAllReported) {
  const std::string text =
      "[tiers]\n"
      "ssd_hihg_watermark = 0.9\n"  // line 2: a typo, with a suggestion
      "[[series]]\n"
      "name = \"hf\"\n"
      "pattern = \"**/checkpoint-{gen}\"\n"
      "complete = \"rename\"\n"
      "kind = \"folder\"\n"  // line 7: not a kind
      "[[rule]]\n"
      "name = \"keep\"\n"
      "series = \"hf\"\n"
      "action = \"thin\"\n"
      "keep_last = -1\n"  // line 12: out of range
      "[[rule]]\n"
      "name = \"fine\"\n"
      "action = \"migrate\"\n"
      "to = \"hdd\"\n";
  const std::vector<std::string> errors = Errors(text);
  ASSERT_EQ(errors.size(), 3u) << testing::PrintToString(errors);
  EXPECT_TRUE(StartsWith(errors[0], "p.toml:2:1: ")) << errors[0];
  EXPECT_NE(errors[0].find("did you mean \"ssd_high_watermark\""), std::string::npos) << errors[0];
  EXPECT_TRUE(StartsWith(errors[1], "p.toml:7:8: ")) << errors[1];
  EXPECT_NE(errors[1].find("folder"), std::string::npos) << errors[1];
  EXPECT_TRUE(StartsWith(errors[2], "p.toml:12:13: ")) << errors[2];
  EXPECT_NE(errors[2].find("keep_last"), std::string::npos) << errors[2];
}

TEST(PolicyCheck, ABrokenSeriesDoesNotMakeItsRulesFailToo) {
  const std::string text =
      "[[series]]\n"
      "name = \"hf\"\n"
      "pattern = \"**/checkpoint-{gen}\"\n"
      "complete = \"renamed\"\n"  // the only mistake
      "[[rule]]\n"
      "name = \"keep\"\n"
      "series = \"hf\"\n"
      "action = \"thin\"\n"
      "older_than_newest = 3\n";
  const std::vector<std::string> errors = Errors(text);
  ASSERT_EQ(errors.size(), 1u) << testing::PrintToString(errors);
  EXPECT_TRUE(StartsWith(errors[0], "p.toml:4:")) << errors[0];
}

TEST(PolicyCheck, ASyntaxErrorIsOneErrorAndParsePolicyGivesTheFirst) {
  EXPECT_EQ(Errors("[tiers\n").size(), 1u);
  const std::string two = "[tiers]\nssd_high_watermark = 2\n[throttle]\nmax_moves = 0\n";
  const std::vector<std::string> errors = Errors(two);
  ASSERT_EQ(errors.size(), 2u) << testing::PrintToString(errors);
  Policy policy;
  Status st = ParsePolicy(two, "p.toml", &policy);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), errors[0]);
  EXPECT_TRUE(Errors(DefaultPolicyText()).empty());
}

}  // namespace
}  // namespace tierfs
