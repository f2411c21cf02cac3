// PathPattern: the path pattern language of policy files.
//
// A pattern is matched against a whole path inside the mount ("/a/b/c"),
// component by component; a leading "/" in the pattern is optional.
//   **      any number (zero or more) of whole path components
//   *       any run of characters within one component
//   {gen}   a decimal number (one or more digits, taken greedily), captured
//           as the checkpoint generation; at most one per pattern
//   other   literal characters
// Compile once, match many times: a pattern with at most one "*" per
// component and one "**" matches without allocating, so a scan of a million
// paths stays well under a second. More of them are matched with a memo of
// the positions already known not to match (allocated per match), so no
// pattern costs more than (tokens x name length) steps per component and
// (components x path depth) per path: plain backtracking was exponential,
// and a user's dry run of "*a*a*a*a*a*a*a*a*c{gen}" against a long name held
// the policy engine's lock for good.
//
// Thread-safety: a compiled PathPattern is immutable; Match may run
// concurrently from any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meta/status.h"

namespace tierfs {

class PathPattern {
 public:
  enum class GenRule { kForbidden, kRequired };

  // Compiles `text`. With GenRule::kRequired the pattern must contain exactly
  // one {gen}; with kForbidden none. On failure returns EINVAL with a reason
  // (no location: the caller knows where the text came from).
  static Status Compile(std::string_view text, GenRule gen_rule, PathPattern* out);

  // Matches a whole path ("/a/b"). On success with a {gen} pattern, stores
  // the captured number in *gen (may be null). Numbers that overflow
  // uint64 do not match.
  bool Match(std::string_view path, uint64_t* gen) const;
  // Same, over a path already split into components ("a", "b").
  bool MatchComponents(const std::vector<std::string_view>& components, uint64_t* gen) const;
  // Matches a single name (a one-component pattern without "**").
  bool MatchName(std::string_view name) const;

  const std::string& text() const { return text_; }
  size_t component_count() const { return components_.size(); }

 private:
  struct Token {
    enum Kind : uint8_t { kLiteral, kStar, kGen } kind;
    std::string literal;
  };
  struct Component {
    bool any_path = false;  // "**"
    std::vector<Token> tokens;
    int stars = 0;  // "*" tokens: past one, matching keeps a memo
  };
  // (state, position) pairs known not to match; empty: no memo kept.
  using FailMemo = std::vector<bool>;

  bool MatchFrom(size_t pattern_index, const std::vector<std::string_view>& components,
                 size_t component_index, uint64_t* gen, FailMemo* failed) const;
  // Matches `c` against a whole name.
  static bool MatchComponent(const Component& c, std::string_view name, uint64_t* gen);
  // Matches tokens[token_index..] against the rest of a name of `full`
  // bytes, `name` being its last bytes.
  static bool MatchTokens(const std::vector<Token>& tokens, size_t token_index,
                          std::string_view name, size_t full, uint64_t* gen, FailMemo* failed);

  std::string text_;
  std::vector<Component> components_;
  int any_paths_ = 0;  // "**" components: past one, matching keeps a memo
};

// Splits "/a/b/c" into {"a", "b", "c"} (views into `path`), reusing *out.
void SplitPath(std::string_view path, std::vector<std::string_view>* out);

}  // namespace tierfs
