// Unit tests of the policy parser: the example and default files load, and
// every kind of mistake is reported at its exact line and column.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "policy/policy.h"
#include "policy/units.h"

namespace tierfs {
namespace {

std::string ParseError(const std::string& text) {
  Policy policy;
  Status st = ParsePolicy(text, "p.toml", &policy);
  EXPECT_FALSE(st.ok()) << "accepted:\n" << text;
  return st.message();
}

// Asserts the error starts with "p.toml:<where>: " and mentions `words`.
#define EXPECT_POLICY_ERROR(text, where, words)                                          \
  do {                                                                                   \
    std::string message = ParseError(text);                                              \
    EXPECT_EQ(message.rfind(std::string("p.toml:") + (where) + ": ", 0), 0u) << message; \
    EXPECT_NE(message.find(words), std::string::npos) << message;                        \
  } while (0)

const std::string kRuleHead =
    "[[series]]\nname = \"hf\"\npattern = \"**/checkpoint-{gen}\"\n"
    "complete = \"rename\"\n[[rule]]\nname = \"r\"\n";  // 6 lines

TEST(PolicyParse, ExampleFileLoads) {
  std::filesystem::path example =
      std::filesystem::path(__FILE__).parent_path() / "../../policy/example.toml";
  Policy policy;
  Status st = LoadPolicy(example.string(), &policy);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(policy.series.size(), 4u);
  EXPECT_EQ(policy.rules.size(), 7u);
  EXPECT_DOUBLE_EQ(policy.limits.watermarks.low, 0.75);
  EXPECT_EQ(policy.rules[2].pin_until_ns, int64_t{1814313600} * kNsPerSecond);  // 2027-06-30Z
  EXPECT_TRUE(policy.rules[2].immutable);
  EXPECT_EQ(policy.rules[6].owner_name, "trainer");
}

TEST(PolicyParse, DefaultPolicyLoadsAndSaysWhatItPromises) {
  Policy policy;
  Status st = ParsePolicy(DefaultPolicyText(), "default", &policy);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_DOUBLE_EQ(policy.limits.watermarks.high, 0.90);
  EXPECT_DOUBLE_EQ(policy.limits.watermarks.low, 0.75);
  EXPECT_EQ(policy.limits.move_bytes_per_sec, 256u << 20);
  std::vector<std::string> names;
  for (const Series& s : policy.series) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"hf", "deepspeed", "megatron", "dcp", "nemo",
                                             "lightning", "orbax"}));
  ASSERT_EQ(policy.rules.size(), 4u);
  EXPECT_EQ(policy.rules[0].keep_last, 3u);
  EXPECT_EQ(policy.rules[1].every_kth, 5u);
  EXPECT_EQ(policy.rules[1].pin_for_ns, 90 * 86400 * kNsPerSecond);
  EXPECT_EQ(policy.rules[2].older_than_newest, 3u);
  EXPECT_EQ(policy.rules[3].idle_for_ns, 3600 * kNsPerSecond);
}

TEST(PolicyParse, EmptyFileIsAPolicyThatDoesNothing) {
  Policy policy;
  ASSERT_TRUE(ParsePolicy("# nothing\n", "p.toml", &policy).ok());
  EXPECT_TRUE(policy.rules.empty());
}

TEST(PolicyParse, SyntaxErrorsCarryTheirLocation) {
  EXPECT_POLICY_ERROR("[tiers]\nssd_high_watermark = \n", "2:22", "missing value");
  EXPECT_POLICY_ERROR("[throttle]\nmax_moves = 2 3\n", "2:15", "invalid line format");
  EXPECT_POLICY_ERROR("[tiers]\n[tiers]\n", "2:1", "already exists");
  EXPECT_POLICY_ERROR("[throttle]\nmax_moves = 1\nmax_moves = 2\n", "3:13", "already exists");
  EXPECT_POLICY_ERROR("[throttle]\n  move_bandwidth = \"1MiB\n", "2:20", "");
}

TEST(PolicyParse, InvalidUtf8IsRejectedNotAsserted) {
  // toml11 3.7 aborts on this input unless the parser checks the encoding first.
  EXPECT_POLICY_ERROR("# ok\nx = '\xff'\n", "2:6", "not UTF-8");
  EXPECT_POLICY_ERROR("a = \"\xc0\xaf\"\n", "1:6", "not UTF-8");  // overlong "/"
}

TEST(PolicyParse, UnknownKeysAtEveryLevel) {
  EXPECT_POLICY_ERROR("[tierz]\n", "1:2", "unknown key \"tierz\"");
  EXPECT_POLICY_ERROR("rules = []\n", "1:1", "did you mean \"rule\"");
  EXPECT_POLICY_ERROR("[tiers]\nssd_high_watermark = 0.9\n  ssd_low = 0.5\n", "3:3",
                      "unknown key \"ssd_low\" in [tiers]");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nseries = \"*\"\nolder_then = \"1d\"\n", "9:1",
                      "did you mean \"older_than\"");
  EXPECT_POLICY_ERROR("[[series]]\nname = \"x\"\ngen_pattern = \"{gen}\"\n", "3:1",
                      "unknown key \"gen_pattern\" in [[series]]");
}

TEST(PolicyParse, WrongTypes) {
  EXPECT_POLICY_ERROR("[throttle]\nmax_moves = \"two\"\n", "2:13", "must be an integer");
  EXPECT_POLICY_ERROR("[tiers]\nssd_high_watermark = 90\n", "2:22", "fraction");
  EXPECT_POLICY_ERROR("series = 3\n", "1:1", "[[series]]");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nimmutable = \"yes\"\n", "8:13",
                      "true or false");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"migrate\"\nto = \"hdd\"\nolder_than = 3600\n", "9:14",
                      "duration string");
}

TEST(PolicyParse, BadPatterns) {
  EXPECT_POLICY_ERROR("[[series]]\nname = \"a\"\npattern = \"**/checkpoint\"\n", "3:11",
                      "needs one {gen}");
  EXPECT_POLICY_ERROR("[[series]]\nname = \"a\"\npattern = \"**/{gen}-{gen}\"\n", "3:11",
                      "only one {gen}");
  EXPECT_POLICY_ERROR("[[series]]\nname = \"a\"\npattern = [\"**/a{gen}\", \"x/**b/{gen}\"]\n",
                      "3:25", "whole path component");
  EXPECT_POLICY_ERROR("[[series]]\nname = \"a\"\npattern = \"**/{step}\"\n", "3:11",
                      "only {gen} may appear in braces");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\npath = \"/a//b\"\n", "8:8", "empty path");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\npath = \"/a/{gen}\"\n", "8:8",
                      "only allowed in series");
}

TEST(PolicyParse, BadDurationsAndSizes) {
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nolder_than = \"90x\"\n", "8:14", "unknown");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nidle_for = \"30m1h\"\n", "8:12",
                      "largest first");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nidle_for = \"1.5h\"\n", "8:12",
                      "bad duration");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nmin_size = \"10XB\"\n", "8:12",
                      "unknown unit \"XB\"");
  EXPECT_POLICY_ERROR("[throttle]\nmove_bandwidth = \"fast\"\n", "2:18", "bad size");
  EXPECT_POLICY_ERROR("[[series]]\nname=\"a\"\npattern=\"{gen}\"\ncomplete=\"quiet:5\"\n", "4:10",
                      "missing unit");
}

// [scrub] (fs/scrub.h): its defaults are meta/limits.h's, the built-in
// policy shows them, "0" and "off" turn it off, and each bad value is named
// at its place.
TEST(PolicyParse, ScrubSection) {
  Policy policy;
  ASSERT_TRUE(ParsePolicy("# nothing\n", "p.toml", &policy).ok());
  EXPECT_EQ(policy.scrub.interval_ns, 7 * 86400 * kNsPerSecond);
  EXPECT_EQ(policy.scrub.bytes_per_sec, 64u << 20);
  Policy def;
  ASSERT_TRUE(ParsePolicy(DefaultPolicyText(), "default", &def).ok());
  EXPECT_EQ(def.scrub.interval_ns, ScrubLimits().interval_ns);
  EXPECT_EQ(def.scrub.bytes_per_sec, ScrubLimits().bytes_per_sec);
  EXPECT_NE(DefaultPolicyText().find("[scrub]\ninterval = \"7d\""), std::string::npos)
      << DefaultPolicyText();

  Status st =
      ParsePolicy("[scrub]\ninterval = \"1d12h\"\nbandwidth = \"10MiB/s\"\n", "p.toml", &policy);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(policy.scrub.interval_ns, 36 * 3600 * kNsPerSecond);
  EXPECT_EQ(policy.scrub.bytes_per_sec, 10u << 20);
  for (const char* off : {"\"off\"", "\"0\"", "0", "\"0s\""}) {
    st = ParsePolicy(std::string("[scrub]\ninterval = ") + off + "\n", "p.toml", &policy);
    ASSERT_TRUE(st.ok()) << off << ": " << st.message();
    EXPECT_EQ(policy.scrub.interval_ns, 0) << off;
  }
  ASSERT_TRUE(ParsePolicy("[scrub]\nbandwidth = 4096\n", "p.toml", &policy).ok());
  EXPECT_EQ(policy.scrub.bytes_per_sec, 4096u);

  EXPECT_POLICY_ERROR("[scrub]\ninterval = \"weekly\"\n", "2:12", "interval: bad duration");
  EXPECT_POLICY_ERROR("[scrub]\ninterval = \"7x\"\n", "2:12", "\"off\" turns the scrub off");
  EXPECT_POLICY_ERROR("[scrub]\ninterval = 7\n", "2:12", "interval must be a duration");
  EXPECT_POLICY_ERROR("[scrub]\nbandwidth = \"fast\"\n", "2:13", "bandwidth: bad size");
  EXPECT_POLICY_ERROR("[scrub]\nbandwidth = \"0MiB/s\"\n", "2:13", "bandwidth must be above 0");
  EXPECT_POLICY_ERROR("[scrub]\nbandwidth = -1\n", "2:13", "must not be negative");
  EXPECT_POLICY_ERROR("[scrub]\nintervall = \"1d\"\n", "2:1",
                      "unknown key \"intervall\" in [scrub]");
  EXPECT_POLICY_ERROR("scrub = 1\n", "1:9", "scrub must be a table");
}

// [pins] max_user_immutable (fs/control_pins.cc): the longest immutable
// pin a user other than root may set. Absent: meta/limits.h's 30 days, as
// the built-in policy shows; "0" (or 0) forbids them; each bad value is
// named at its line and column, with the key.
TEST(PolicyParse, PinsSection) {
  Policy policy;
  ASSERT_TRUE(ParsePolicy("# nothing\n", "p.toml", &policy).ok());
  EXPECT_EQ(policy.pins.max_user_immutable_ns, 30 * 86400 * kNsPerSecond);
  Policy def;
  ASSERT_TRUE(ParsePolicy(DefaultPolicyText(), "default", &def).ok());
  EXPECT_EQ(def.pins.max_user_immutable_ns, PinLimits().max_user_immutable_ns);
  EXPECT_NE(DefaultPolicyText().find("[pins]\nmax_user_immutable = \"30d\""), std::string::npos)
      << DefaultPolicyText();

  Status st = ParsePolicy("[pins]\nmax_user_immutable = \"1w12h\"\n", "p.toml", &policy);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(policy.pins.max_user_immutable_ns, (7 * 24 + 12) * 3600 * kNsPerSecond);
  for (const char* none : {"\"0\"", "0", "\"0d\""}) {
    st = ParsePolicy(std::string("[pins]\nmax_user_immutable = ") + none + "\n", "p.toml", &policy);
    ASSERT_TRUE(st.ok()) << none << ": " << st.message();
    EXPECT_EQ(policy.pins.max_user_immutable_ns, 0) << none;
  }

  EXPECT_POLICY_ERROR("[pins]\nmax_user_immutable = \"a month\"\n", "2:22",
                      "max_user_immutable: bad duration \"a month\"");
  EXPECT_POLICY_ERROR("[pins]\nmax_user_immutable = \"30\"\n", "2:22",
                      "max_user_immutable: bad duration \"30\": missing unit");
  EXPECT_POLICY_ERROR("[pins]\nmax_user_immutable = \"off\"\n", "2:22",
                      "\"0\" forbids immutable pins by users other than root");
  EXPECT_POLICY_ERROR("[pins]\nmax_user_immutable = \"-1d\"\n", "2:22",
                      "max_user_immutable: bad duration");
  EXPECT_POLICY_ERROR("[pins]\nmax_user_immutable = 30\n", "2:22",
                      "max_user_immutable must be a duration like \"30d\", not an integer");
  EXPECT_POLICY_ERROR("[pins]\nmax_user_immutable = -1\n", "2:22",
                      "max_user_immutable must be a duration");
  EXPECT_POLICY_ERROR("[pins]\nmax_user_immutable = true\n", "2:22",
                      "max_user_immutable must be a duration");
  EXPECT_POLICY_ERROR("[pins]\nmax_user_immutable = \"999999w\"\n", "2:22", "is too long");
  EXPECT_POLICY_ERROR("[pins]\nmax_immutable = \"1d\"\n", "2:1",
                      "unknown key \"max_immutable\" in [pins]");
  EXPECT_POLICY_ERROR("pins = \"30d\"\n", "1:8", "pins must be a table");
}

TEST(PolicyParse, UnknownTierAndBadActions) {
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"migrate\"\nto = \"nvme\"\n", "8:6",
                      "unknown tier \"nvme\"");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"delete\"\n", "7:10", "action must be");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"migrate\"\n", "7:1", "needs to =");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nto = \"hdd\"\n", "8:1",
                      "to only applies to migrate and pin");
  EXPECT_POLICY_ERROR(kRuleHead + "series = \"*\"\n", "5:1", "needs action");
  EXPECT_POLICY_ERROR("[[rule]]\naction = \"thin\"\n", "1:1", "needs a name");
  EXPECT_POLICY_ERROR(
      kRuleHead + "action=\"thin\"\npath=\"/tmp/**\"\n[[rule]]\n  name = \"r\"\naction=\"thin\"\n",
      "10:3", "used twice (first on line 5)");
}

TEST(PolicyParse, RulesThatCanNeverMatch) {
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nseries = \"deepspeed\"\n", "8:10",
                      "no series named \"deepspeed\" (defined: hf");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nmin_size = \"2GiB\"\nmax_size = \"1GiB\"\n",
                      "9:1", "min_size is larger than max_size");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nseries = \"hf\"\nevery_kth = 0\n", "9:13",
                      "selects nothing");
  EXPECT_POLICY_ERROR(
      kRuleHead + "action = \"migrate\"\nto=\"ssd\"\nseries = \"hf\"\nkeep_last = 0\n", "10:13",
      "selects nothing");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nolder_than_newest = 2\n", "8:1",
                      "need series");
  // 0 is refused as keep_last = 0 and every_kth = 0 are (tierfs.policy(5):
  // "a selector of 0"): it would select every generation, the newest too.
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nseries = \"hf\"\nolder_than_newest = 0\n",
                      "9:21", "older_than_newest = 0 selects every generation");
  EXPECT_POLICY_ERROR(
      kRuleHead + "action = \"migrate\"\nto = \"hdd\"\nseries = \"*\"\nolder_than_newest = 0\n",
      "10:21", "the smallest useful value is 1");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nseries = \"hf\"\nolder_than_newest = -1\n",
                      "9:21", "the smallest useful value is 1");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nseries = \"hf\"\nin_series = false\n", "9:1",
                      "never match");
  EXPECT_POLICY_ERROR(
      kRuleHead + "action = \"pin\"\nseries = \"hf\"\nkeep_last = 2\nolder_than_newest = 2\n",
      "10:1", "never have 2 newer");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nseries = \"hf\"\nkeep_last = 2\n", "9:1",
                      "older_than_newest instead");
}

// A thin rule deletes what it matches: one without a condition that leaves
// some file out would thin the whole mount, so it is refused, saying what to
// add; "thin everything" stays possible when written out as path = "**".
TEST(PolicyParse, AThinRuleWithoutAConditionIsRefused) {
  EXPECT_POLICY_ERROR("[[rule]]\nname = \"wipe\"\naction = \"thin\"\n", "3:1",
                      "rule \"wipe\": a thin rule without a condition deletes every file");
  EXPECT_POLICY_ERROR("[[rule]]\nname = \"wipe\"\naction = \"thin\"\n", "3:1",
                      "limit it with path, series");
  EXPECT_POLICY_ERROR("[[rule]]\nname = \"wipe\"\naction = \"thin\"\n", "3:1",
                      "write path = \"**\"");
  // Conditions that hold for every file do not limit it either.
  for (const char* everything :
       {"min_size = 0\n", "min_size = \"0B\"\n", "older_than = \"0s\"\n", "idle_for = \"0d\"\n"}) {
    EXPECT_POLICY_ERROR(
        std::string("[[rule]]\nname = \"wipe\"\n") + everything + "action = \"thin\"\n", "4:1",
        "without a condition");
  }
  // Any real condition is enough, and so is the explicit path = "**".
  for (const char* limit : {"path = \"**\"\n", "path = \"/scratch/**\"\n", "series = \"hf\"\n",
                            "in_series = false\n", "min_size = \"1GiB\"\n", "max_size = \"1k\"\n",
                            "older_than = \"30d\"\n", "idle_for = \"1h\"\n", "owner = 1000\n"}) {
    Policy policy;
    Status st = ParsePolicy(kRuleHead + limit + "action = \"thin\"\n", "p.toml", &policy);
    EXPECT_TRUE(st.ok()) << limit << st.message();
  }
  // Other actions may still apply to every file.
  for (const char* action :
       {"action = \"migrate\"\nto = \"hdd\"\n", "action = \"pin\"\n", "action = \"exclude\"\n"}) {
    Policy policy;
    Status st = ParsePolicy(std::string("[[rule]]\nname = \"all\"\n") + action, "p.toml", &policy);
    EXPECT_TRUE(st.ok()) << action << st.message();
  }
  // tierctl policy check reports it with the file's other errors.
  Policy policy;
  std::vector<Status> errors;
  ParsePolicyAll("[tiers]\nssd_high_watermark = 2\n[[rule]]\nname = \"wipe\"\naction = \"thin\"\n",
                 "p.toml", &policy, &errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[1].message().rfind("p.toml:5:1: rule \"wipe\": a thin rule without", 0), 0u)
      << errors[1].message();
}

TEST(PolicyParse, BadPinDates) {
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = 2027-13-01T00:00:00Z\n", "8:19",
                      "invalid date");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = \"2027-02-29T00:00:00Z\"\n", "8:9",
                      "bad date");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = 2027-01-01T00:00:00\n", "8:9",
                      "no UTC offset");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = \"2027-01-01T00:00:00\"\n", "8:9",
                      "no UTC offset");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nfor = \"1d\"\nuntil = 2027-01-01\n", "9:1",
                      "either for or until");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"thin\"\nuntil = 2027-01-01\n", "8:1",
                      "only apply to pin");
}

// Pin dates must fit int64 nanoseconds since the epoch: outside that range
// they used to wrap and pin nothing.
TEST(PolicyParse, PinDatesOutOfRangeAreLocatedErrors) {
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = 9999-12-31T23:59:59Z\n", "8:9",
                      "after 2262-04-11T23:47:16Z");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = 2262-04-12\n", "8:9",
                      "after 2262-04-11T23:47:16Z");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = \"2262-04-11T23:47:17Z\"\n", "8:9",
                      "after 2262-04-11T23:47:16Z");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = 1900-01-01\n", "8:9",
                      "not after 1970-01-01");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = \"1969-12-31T23:59:59Z\"\n", "8:9",
                      "not after 1970-01-01");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nuntil = 1970-01-01T00:00:00Z\n", "8:9",
                      "not after 1970-01-01");
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nfor = \"15251w\"\n", "8:7", "too long");
  // Numbers past 64 bits say so, rather than that no number is there.
  EXPECT_POLICY_ERROR(kRuleHead + "action = \"pin\"\nfor = \"99999999999999999999999h\"\n", "8:7",
                      "\"99999999999999999999999h\" is too long");
  EXPECT_POLICY_ERROR("[throttle]\nmove_bandwidth = \"99999999999999999999GiB\"\n", "2:18",
                      "\"99999999999999999999GiB\" is too large");
  EXPECT_POLICY_ERROR(
      kRuleHead + "action = \"thin\"\nseries = \"*\"\nkeep_last = 99999999999999999999\n", "9:13",
      "not 9223372036854775807 or more");
  Policy policy;
  for (const char* until : {"2262-04-11", "2262-04-11T23:47:16Z", "\"2262-04-11T23:47:16Z\""}) {
    Status st =
        ParsePolicy(kRuleHead + "action = \"pin\"\nuntil = " + until + "\n", "p.toml", &policy);
    ASSERT_TRUE(st.ok()) << until << ": " << st.message();
    EXPECT_GT(*policy.rules[0].pin_until_ns, int64_t{9'200'000'000} * kNsPerSecond) << until;
  }
}

TEST(PolicyParse, BadSeriesAndWatermarks) {
  EXPECT_POLICY_ERROR("[[series]]\nname = \"a\"\npattern = \"{gen}\"\ncomplete = \"done\"\n",
                      "4:12", "unknown completeness signal");
  EXPECT_POLICY_ERROR("[[series]]\nname = \"a\"\npattern = \"{gen}\"\ncomplete = \"marker:a/b\"\n",
                      "4:12", "file name");
  EXPECT_POLICY_ERROR("[[series]]\nname = \"a\"\npattern = \"{gen}\"\n", "1:1", "needs complete");
  EXPECT_POLICY_ERROR(
      "[[series]]\nname = \"a\"\npattern=\"{gen}\"\ncomplete=\"rename\"\n"
      "[[series]]\nname = \"a\"\n",
      "6:8", "defined twice");
  EXPECT_POLICY_ERROR("[tiers]\nssd_high_watermark = 0.7\nssd_low_watermark = \"80%\"\n", "3:21",
                      "below ssd_high_watermark");
  EXPECT_POLICY_ERROR("[tiers]\nssd_high_watermark = \"190%\"\n", "2:22", "at most 1");
}

TEST(PolicyParse, SpanOwnersIsABooleanOffByDefault) {
  Policy policy;
  ASSERT_TRUE(ParsePolicy(kRuleHead + "action = \"thin\"\nseries = \"hf\"\nolder_than_newest = 1\n",
                          "p.toml", &policy)
                  .ok());
  EXPECT_FALSE(policy.series[0].span_owners);
  const std::string spanning =
      "[[series]]\nname = \"hf\"\npattern = \"**/checkpoint-{gen}\"\ncomplete = \"rename\"\n"
      "span_owners = true\n";
  ASSERT_TRUE(ParsePolicy(spanning, "p.toml", &policy).ok());
  EXPECT_TRUE(policy.series[0].span_owners);
  EXPECT_POLICY_ERROR(
      "[[series]]\nname = \"hf\"\npattern = \"c-{gen}\"\ncomplete = \"rename\"\n"
      "span_owners = \"yes\"\n",
      "5:15", "span_owners");
}

TEST(PolicyParse, LoadReportsMissingFile) {
  Policy policy;
  Status st = LoadPolicy("/nonexistent/policy.toml", &policy);
  EXPECT_EQ(st.err(), ENOENT);
  EXPECT_NE(st.message().find("/nonexistent/policy.toml"), std::string::npos);
}

TEST(PolicyParse, FailedParseLeavesThePolicyUntouched) {
  Policy policy;
  policy.limits.max_moves = 7;
  EXPECT_FALSE(ParsePolicy("[throttle]\nmax_moves = 3\nbogus = 1\n", "p.toml", &policy).ok());
  EXPECT_EQ(policy.limits.max_moves, 7u);
}

TEST(PolicyParse, OwnerNamesResolveThroughTheCaller) {
  Policy policy;
  ASSERT_TRUE(ParsePolicy(kRuleHead + "action = \"thin\"\nowner = \"alice\"\n", "p", &policy).ok());
  EXPECT_FALSE(policy.rules[0].owner_uid);
  auto lookup = [](const std::string& name, uint32_t* uid) {
    *uid = 1234;
    return name == "alice";
  };
  ASSERT_TRUE(ResolveOwnerNames(lookup, &policy).ok());
  EXPECT_EQ(policy.rules[0].owner_uid, 1234u);
}

TEST(PolicyUnits, Durations) {
  int64_t ns = 0;
  std::string why;
  struct {
    const char* text;
    int64_t seconds;
  } good[] = {{"90d", 90 * 86400}, {"1h", 3600},    {"30m", 1800},      {"45s", 45},
              {"2w", 14 * 86400},  {"1h30m", 5400}, {"1d2h3m4s", 93784}};
  for (const auto& g : good) {
    ASSERT_TRUE(ParseDuration(g.text, &ns, &why)) << g.text << ": " << why;
    EXPECT_EQ(ns, g.seconds * kNsPerSecond) << g.text;
  }
  for (const char* bad :
       {"", "90", "d", "1h1h", "30m1h", "1.5h", "-1h", "1 h", "1y", "99999999999999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad, &ns, &why)) << bad;
  }
}

TEST(PolicyUnits, Sizes) {
  uint64_t bytes = 0;
  std::string why;
  struct {
    const char* text;
    uint64_t bytes;
  } good[] = {{"10GiB", 10ull << 30}, {"512MB", 512000000},
              {"4k", 4096},           {"0", 0},
              {"1.5KiB", 1536},       {"7B", 7},
              {"2T", 2ull << 40}};
  for (const auto& g : good) {
    ASSERT_TRUE(ParseSize(g.text, &bytes, &why)) << g.text << ": " << why;
    EXPECT_EQ(bytes, g.bytes) << g.text;
  }
  for (const char* bad : {"", "GiB", "10 XB", "1e9", "-1", "10gib", "1.k", "99999999999TiB"}) {
    EXPECT_FALSE(ParseSize(bad, &bytes, &why)) << bad;
  }
}

TEST(PolicyUnits, Dates) {
  int64_t ns = 0;
  std::string why;
  ASSERT_TRUE(ParseRfc3339("1970-01-02T00:00:00Z", &ns, &why));
  EXPECT_EQ(ns, 86400 * kNsPerSecond);
  ASSERT_TRUE(ParseRfc3339("2024-02-29T12:00:00.5+02:00", &ns, &why)) << why;
  EXPECT_EQ(FormatUtc(ns), "2024-02-29T10:00:00Z");
  for (const char* bad : {"2023-02-29", "2027-1-01", "2027-01-01T25:00:00Z", "yesterday",
                          "2027-01-01T00:00Z", "2027-01-01T00:00:00+2"}) {
    EXPECT_FALSE(ParseRfc3339(bad, &ns, &why)) << bad;
  }
}

// The one fraction parser, shared by the policy file and the command line.
TEST(PolicyUnits, ParsesFractionsAndPercentages) {
  double v = 0;
  std::string why;
  ASSERT_TRUE(ParseFraction("0.9", &v, &why)) << why;
  EXPECT_DOUBLE_EQ(0.9, v);
  ASSERT_TRUE(ParseFraction("75%", &v, &why)) << why;
  EXPECT_DOUBLE_EQ(0.75, v);
  ASSERT_TRUE(ParseFraction("1", &v, &why)) << why;
  EXPECT_DOUBLE_EQ(1.0, v);
  for (const char* bad : {"", "%", "abc", "0", "1.5", "150%", "-3%", "0.5x", "0%"}) {
    EXPECT_FALSE(ParseFraction(bad, &v, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

}  // namespace
}  // namespace tierfs
