// PathPattern: the path pattern language of policy files.
//
// A pattern is matched against a whole path inside the mount ("/a/b/c"),
// component by component; a leading "/" in the pattern is optional.
//   **      any number (zero or more) of whole path components
//   *       any run of characters within one component
//   {gen}   a decimal number (one or more digits, taken greedily), captured
//           as the checkpoint generation; at most one per pattern
//   other   literal characters
// Compile once, match many times: matching allocates nothing and never
// backtracks across more than the "**" components, so a scan of a million
// paths stays well under a second.
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
  };

  bool MatchFrom(size_t pattern_index, const std::vector<std::string_view>& components,
                 size_t component_index, uint64_t* gen) const;
  static bool MatchTokens(const std::vector<Token>& tokens, size_t token_index,
                          std::string_view name, uint64_t* gen);

  std::string text_;
  std::vector<Component> components_;
};

// Splits "/a/b/c" into {"a", "b", "c"} (views into `path`), reusing *out.
void SplitPath(std::string_view path, std::vector<std::string_view>* out);

}  // namespace tierfs
