// Property test of the policy parser: thousands of random and mutated policy
// files (fixed seed, so failures reproduce) must never crash and must either
// load or fail with "file:line:column: reason".
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "policy/policy.h"

namespace tierfs {
namespace {

const char* const kFragments[] = {"=",
                                  "\"",
                                  "'",
                                  "[",
                                  "]",
                                  "{",
                                  "}",
                                  ",",
                                  "\n",
                                  "#",
                                  "\"\"\"",
                                  "[[rule]]\n",
                                  "[[series]]\n",
                                  "[tiers]\n",
                                  "{gen}",
                                  "**",
                                  "*",
                                  "/",
                                  "1979-05-27T07:32:00Z",
                                  "2027-13-40",
                                  "0.5",
                                  "-1",
                                  "99999999999999999999",
                                  "true",
                                  "\"90d\"",
                                  "\"1h30m\"",
                                  "\"10GiB\"",
                                  "\"hdd\"",
                                  "\"nvme\"",
                                  "name = \"x\"\n",
                                  "action = \"thin\"\n",
                                  "series = \"*\"\n",
                                  "keep_last = 0\n",
                                  "\\u00e9",
                                  "\t",
                                  " ",
                                  "\r\n",
                                  "\xff",
                                  "\xc3\xa9",
                                  std::string(1, '\0').c_str(),
                                  "inf",
                                  "nan",
                                  "0x1F",
                                  "a.b.c = 1\n",
                                  "x = [1, \"a\"]\n",
                                  "to = ",
                                  "pattern = \"**/{gen}/{gen}\"\n"};

// Whether `message` matches ^[^:]+:\d+:\d+: (hand-written: GCC 12 reports
// false maybe-uninitialized warnings inside std::regex under sanitizers).
bool IsLocated(const std::string& message) {
  size_t pos = message.find(':');
  if (pos == 0 || pos == std::string::npos) return false;
  for (int number = 0; number < 2; ++number) {
    size_t start = ++pos;
    while (pos < message.size() && message[pos] >= '0' && message[pos] <= '9') ++pos;
    if (pos == start || pos >= message.size() || message[pos] != ':') return false;
  }
  return message.compare(pos, 2, ": ") == 0;
}

// "<NUL>" stands for a NUL byte, which a C string literal cannot hold.
std::string Fragment(size_t index) {
  std::string fragment = kFragments[index];
  return fragment == "<NUL>" ? std::string(1, '\0') : fragment;
}

std::string ReadExample() {
  std::ifstream file(std::filesystem::path(__FILE__).parent_path() / "../../policy/example.toml");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

std::string Mutate(std::string text, std::mt19937_64& rng) {
  auto pick = [&rng](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); };
  const size_t fragment_count = std::size(kFragments);
  int mutations = 1 + static_cast<int>(pick(4));
  for (int m = 0; m < mutations; ++m) {
    std::vector<std::string> lines = Lines(text);
    switch (pick(7)) {
      case 0:  // delete a few characters
        if (!text.empty()) text.erase(pick(text.size()), 1 + pick(8));
        break;
      case 1: {  // insert a fragment
        text.insert(pick(text.size() + 1), Fragment(pick(fragment_count)));
        break;
      }
      case 2:  // duplicate a line
        if (!lines.empty()) {
          size_t i = pick(lines.size());
          lines.insert(lines.begin() + i, lines[i]);
          text = Join(lines);
        }
        break;
      case 3:  // drop a line
        if (!lines.empty()) lines.erase(lines.begin() + pick(lines.size())), text = Join(lines);
        break;
      case 4:  // swap two lines
        if (lines.size() > 1) std::swap(lines[pick(lines.size())], lines[pick(lines.size())]);
        text = Join(lines);
        break;
      case 5: {  // replace a value
        size_t eq = text.find(" = ", pick(text.size()));
        if (eq != std::string::npos) {
          size_t end = text.find('\n', eq);
          text.replace(eq + 3, end == std::string::npos ? std::string::npos : end - eq - 3,
                       Fragment(pick(fragment_count)));
        }
        break;
      }
      case 6:  // truncate
        text.resize(pick(text.size() + 1));
        break;
    }
  }
  return text;
}

std::string RandomPolicy(std::mt19937_64& rng) {
  std::string text;
  size_t pieces = rng() % 40;
  for (size_t i = 0; i < pieces; ++i) {
    text += Fragment(rng() % std::size(kFragments));
  }
  return text;
}

TEST(PolicyParseFuzz, LocatedMessageCheckerAcceptsOnlyTheFormat) {
  EXPECT_TRUE(IsLocated("p.toml:12:3: unknown key"));
  EXPECT_FALSE(IsLocated("p.toml:12: unknown key"));
  EXPECT_FALSE(IsLocated(":1:1: x"));
  EXPECT_FALSE(IsLocated("p.toml:a:1: x"));
  EXPECT_FALSE(IsLocated("p.toml:1:1 x"));
}

TEST(PolicyParseFuzz, EveryInputLoadsOrFailsWithALocation) {
  const uint64_t seed = 20261125;
  std::mt19937_64 rng(seed);
  const std::vector<std::string> bases = {ReadExample(), DefaultPolicyText()};
  ASSERT_FALSE(bases[0].empty());
  int loaded = 0, rejected = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::string text = iteration % 5 == 4 ? RandomPolicy(rng) : Mutate(bases[iteration % 2], rng);
    Policy policy;
    Status st = ParsePolicy(text, "fuzz.toml", &policy);
    if (st.ok()) {
      ++loaded;
      continue;
    }
    ++rejected;
    if (!IsLocated(st.message())) {
      ADD_FAILURE() << "seed " << seed << " iteration " << iteration
                    << ": unlocated error: " << st.message() << "\ninput:\n"
                    << text;
      return;
    }
  }
  // Both outcomes must occur, or the mutations are not exercising the parser.
  EXPECT_GT(loaded, 100) << "seed " << seed;
  EXPECT_GT(rejected, 1000) << "seed " << seed;
  std::cout << "seed " << seed << ": " << loaded << " loaded, " << rejected << " rejected\n";
}

}  // namespace
}  // namespace tierfs
