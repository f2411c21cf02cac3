// The pattern language: compile to components of tokens, match by a small
// backtracking matcher (no std::regex: a policy scan runs it millions of times).
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
                              std::string_view name, uint64_t* gen) {
  if (token_index == tokens.size()) return name.empty();
  const Token& token = tokens[token_index];
  switch (token.kind) {
    case Token::kLiteral:
      if (name.substr(0, token.literal.size()) != token.literal) return false;
      return MatchTokens(tokens, token_index + 1, name.substr(token.literal.size()), gen);
    case Token::kGen: {
      size_t digits = 0;
      uint64_t value = 0;
      while (digits < name.size() && IsDigit(name[digits])) {
        uint64_t digit = static_cast<uint64_t>(name[digits] - '0');
        if (value > (UINT64_MAX - digit) / 10) return false;  // overflow: not a generation
        value = value * 10 + digit;
        ++digits;
      }
      if (digits == 0) return false;
      if (!MatchTokens(tokens, token_index + 1, name.substr(digits), gen)) return false;
      if (gen != nullptr) *gen = value;
      return true;
    }
    case Token::kStar:
      if (token_index + 1 == tokens.size()) return true;  // trailing * eats the rest
      for (size_t skip = 0; skip <= name.size(); ++skip) {
        if (MatchTokens(tokens, token_index + 1, name.substr(skip), gen)) return true;
      }
      return false;
  }
  return false;
}

bool PathPattern::MatchFrom(size_t pattern_index, const std::vector<std::string_view>& components,
                            size_t component_index, uint64_t* gen) const {
  if (pattern_index == components_.size()) return component_index == components.size();
  const Component& component = components_[pattern_index];
  if (component.any_path) {
    if (pattern_index + 1 == components_.size()) return true;
    for (size_t next = component_index; next <= components.size(); ++next) {
      if (MatchFrom(pattern_index + 1, components, next, gen)) return true;
    }
    return false;
  }
  if (component_index == components.size()) return false;
  if (!MatchTokens(component.tokens, 0, components[component_index], gen)) return false;
  return MatchFrom(pattern_index + 1, components, component_index + 1, gen);
}

bool PathPattern::MatchComponents(const std::vector<std::string_view>& components,
                                  uint64_t* gen) const {
  if (components_.empty()) return false;
  // Cheap rejection first: almost every pattern ends in a literal-ish last
  // component, and almost every path fails on it.
  const Component& last = components_.back();
  if (!last.any_path) {
    if (components.empty()) return false;
    if (!MatchTokens(last.tokens, 0, components.back(), nullptr)) return false;
  }
  return MatchFrom(0, components, 0, gen);
}

bool PathPattern::Match(std::string_view path, uint64_t* gen) const {
  std::vector<std::string_view> components;
  SplitPath(path, &components);
  return MatchComponents(components, gen);
}

bool PathPattern::MatchName(std::string_view name) const {
  if (components_.size() != 1 || components_[0].any_path) return false;
  return MatchTokens(components_[0].tokens, 0, name, nullptr);
}

}  // namespace tierfs
