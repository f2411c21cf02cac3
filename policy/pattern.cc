// The pattern language: compile to components of tokens, match by a small
// backtracking matcher that remembers its failures (no std::regex: a policy
// scan runs it millions of times).
#include "policy/pattern.h"

#include <cerrno>

namespace tierfs {

namespace {

constexpr std::string_view kGenToken = "{gen}";

Status Bad(std::string_view text, const std::string& why) {
  return Status::Error(EINVAL, "bad pattern \"" + std::string(text) + "\": " + why);
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

void SplitPath(std::string_view path, std::vector<std::string_view>* out) {
  out->clear();
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) out->push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
}

Status PathPattern::Compile(std::string_view text, GenRule gen_rule, PathPattern* out) {
  PathPattern result;
  result.text_ = std::string(text);
  std::string_view rest = text;
  if (rest.empty()) return Bad(text, "empty pattern");
  if (rest.front() == '/') rest.remove_prefix(1);
  if (rest.empty()) return Bad(text, "pattern matches only the root directory");
  int gen_count = 0;
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t slash = rest.find('/', pos);
    if (slash == std::string_view::npos) slash = rest.size();
    std::string_view part = rest.substr(pos, slash - pos);
    if (part.empty()) return Bad(text, "empty path component (\"//\" or trailing \"/\")");
    Component component;
    if (part == "**") {
      component.any_path = true;
      ++result.any_paths_;
    } else {
      for (size_t i = 0; i < part.size();) {
        if (part.compare(i, kGenToken.size(), kGenToken) == 0) {
          component.tokens.push_back({Token::kGen, ""});
          ++gen_count;
          i += kGenToken.size();
        } else if (part[i] == '*') {
          if (i + 1 < part.size() && part[i + 1] == '*') {
            return Bad(text, "\"**\" must be a whole path component");
          }
          component.tokens.push_back({Token::kStar, ""});
          ++component.stars;
          ++i;
        } else if (part[i] == '{' || part[i] == '}') {
          return Bad(text, "only {gen} may appear in braces");
        } else {
          if (component.tokens.empty() || component.tokens.back().kind != Token::kLiteral) {
            component.tokens.push_back({Token::kLiteral, ""});
          }
          component.tokens.back().literal.push_back(part[i]);
          ++i;
        }
      }
    }
    result.components_.push_back(std::move(component));
    pos = slash + 1;
    if (slash == rest.size()) break;
  }
  if (gen_rule == GenRule::kRequired && gen_count == 0) {
    return Bad(text, "a series pattern needs one {gen} to capture the generation number");
  }
  if (gen_rule == GenRule::kRequired && gen_count > 1) {
    return Bad(text, "a series pattern may contain only one {gen}");
  }
  if (gen_rule == GenRule::kForbidden && gen_count > 0) {
    return Bad(text, "{gen} is only allowed in series patterns");
  }
  *out = std::move(result);
  return Status::Ok();
}

bool PathPattern::MatchTokens(const std::vector<Token>& tokens, size_t token_index,
                              std::string_view name, size_t full, uint64_t* gen, FailMemo* failed) {
  if (token_index == tokens.size()) return name.empty();
  const size_t memo = token_index * (full + 1) + (full - name.size());
  if (!failed->empty() && (*failed)[memo]) return false;
  bool matched = false;
  const Token& token = tokens[token_index];
  switch (token.kind) {
    case Token::kLiteral:
      matched = name.substr(0, token.literal.size()) == token.literal &&
                MatchTokens(tokens, token_index + 1, name.substr(token.literal.size()), full, gen,
                            failed);
      break;
    case Token::kGen: {
      size_t digits = 0;
      uint64_t value = 0;
      bool overflow = false;
      while (digits < name.size() && IsDigit(name[digits])) {
        uint64_t digit = static_cast<uint64_t>(name[digits] - '0');
        if (value > (UINT64_MAX - digit) / 10) {  // overflow: not a generation
          overflow = true;
          break;
        }
        value = value * 10 + digit;
        ++digits;
      }
      matched = !overflow && digits > 0 &&
                MatchTokens(tokens, token_index + 1, name.substr(digits), full, gen, failed);
      if (matched && gen != nullptr) *gen = value;
      break;
    }
    case Token::kStar:
      if (token_index + 1 == tokens.size()) return true;  // trailing * eats the rest
      for (size_t skip = 0; skip <= name.size() && !matched; ++skip)
        matched = MatchTokens(tokens, token_index + 1, name.substr(skip), full, gen, failed);
      break;
  }
  if (!matched && !failed->empty()) (*failed)[memo] = true;
  return matched;
}

bool PathPattern::MatchComponent(const Component& c, std::string_view name, uint64_t* gen) {
  FailMemo failed;
  if (c.stars > 1) failed.assign((c.tokens.size() + 1) * (name.size() + 1), false);
  return MatchTokens(c.tokens, 0, name, name.size(), gen, &failed);
}

bool PathPattern::MatchFrom(size_t pattern_index, const std::vector<std::string_view>& components,
                            size_t component_index, uint64_t* gen, FailMemo* failed) const {
  if (pattern_index == components_.size()) return component_index == components.size();
  const size_t memo = pattern_index * (components.size() + 1) + component_index;
  if (!failed->empty() && (*failed)[memo]) return false;
  bool matched = false;
  const Component& component = components_[pattern_index];
  if (component.any_path) {
    if (pattern_index + 1 == components_.size()) return true;
    for (size_t next = component_index; next <= components.size() && !matched; ++next)
      matched = MatchFrom(pattern_index + 1, components, next, gen, failed);
  } else {
    matched = component_index < components.size() &&
              MatchComponent(component, components[component_index], gen) &&
              MatchFrom(pattern_index + 1, components, component_index + 1, gen, failed);
  }
  if (!matched && !failed->empty()) (*failed)[memo] = true;
  return matched;
}

bool PathPattern::MatchComponents(const std::vector<std::string_view>& components,
                                  uint64_t* gen) const {
  if (components_.empty()) return false;
  // Cheap rejection first: almost every pattern ends in a literal-ish last
  // component, and almost every path fails on it.
  const Component& last = components_.back();
  if (!last.any_path) {
    if (components.empty()) return false;
    if (!MatchComponent(last, components.back(), nullptr)) return false;
  }
  FailMemo failed;
  if (any_paths_ > 1) failed.assign((components_.size() + 1) * (components.size() + 1), false);
  return MatchFrom(0, components, 0, gen, &failed);
}

bool PathPattern::Match(std::string_view path, uint64_t* gen) const {
  std::vector<std::string_view> components;
  SplitPath(path, &components);
  return MatchComponents(components, gen);
}

bool PathPattern::MatchName(std::string_view name) const {
  if (components_.size() != 1 || components_[0].any_path) return false;
  return MatchComponent(components_[0], name, nullptr);
}

}  // namespace tierfs
