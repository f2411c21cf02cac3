// TomlContext: located errors and typed reads over toml11 values, for the
// policy parser. Internal to policy/. Every failure is a Status whose message
// reads "<file>:<line>:<column>: <reason>", so admins can jump to the spot.
#pragma once

#include <toml.hpp>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meta/status.h"

namespace tierfs {

class TomlContext {
 public:
  explicit TomlContext(std::string file_name) : file_name_(std::move(file_name)) {}

  const std::string& file_name() const { return file_name_; }

  Status AtPosition(uint32_t line, uint32_t column, const std::string& reason) const;
  // At the start of value `v` (for a table from a header: the header line).
  Status At(const toml::value& v, const std::string& reason) const;
  // At key `key` of the entry whose value is `v` (falls back to the value).
  Status AtKey(const toml::value& v, std::string_view key, const std::string& reason) const;

  // A table's entries in file order (toml11 keeps them in a hash map).
  static std::vector<std::pair<std::string, const toml::value*>> Entries(const toml::value& table);
  // Fails at the first key of `table` not in `allowed`, suggesting a near miss.
  Status CheckKeys(const toml::value& table, std::string_view where,
                   std::initializer_list<std::string_view> allowed) const;

  // Typed reads of entry `key` whose value is `v`; the reason names the key.
  Status GetString(std::string_view key, const toml::value& v, std::string* out) const;
  // A string, or an array of strings.
  Status GetStrings(std::string_view key, const toml::value& v,
                    std::vector<std::pair<std::string, const toml::value*>>* out) const;
  Status GetBool(std::string_view key, const toml::value& v, bool* out) const;
  Status GetInteger(std::string_view key, const toml::value& v, int64_t min, int64_t max,
                    int64_t* out) const;

 private:
  std::string file_name_;
};

// Converts a toml11 exception (syntax or type error) into a located Status.
// toml11 3.7's own source_location is sometimes off (it may point at the
// start of the line, or at a re-parsed fragment), so the location is taken
// from the "--> file / N | text / ^---" excerpt of what() when that excerpt
// matches the source text, and from the exception otherwise.
Status StatusFromTomlError(const TomlContext& context, const std::string& source,
                           const toml::exception& error);

std::string TomlTypeName(const toml::value& v);

}  // namespace tierfs
