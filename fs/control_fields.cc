// Typed fields of control requests (fs/control_internal.h): one place that
// checks a field's JSON type, so that a wrongly typed field is the client's
// error (EINVAL naming the field and the type it must have), never an
// exception of the JSON library answered as an internal error.
#include <limits>
#include <string>

#include "fs/control_internal.h"
#include "meta/text_format.h"

namespace tierfs {

using nlohmann::json;

namespace {

// The field `key` of `req`, or null when it is absent or null.
const json* Find(const json& req, const char* key) {
  const auto it = req.find(key);
  return it == req.end() || it->is_null() ? nullptr : &*it;
}

// What a field's value is, in the words of the error.
std::string Kind(const json& v) {
  if (v.is_number_float()) return "a fractional number";
  if (v.is_number_unsigned()) return "the number " + v.dump();
  if (v.is_number_integer()) return "a negative number";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array() || v.is_object()) return std::string("an ") + v.type_name();
  return std::string("a ") + v.type_name();
}

[[noreturn]] void Wrong(const char* key, const char* want, const json& got) {
  throw ControlFieldError("\"" + std::string(key) + "\" must be " + want + ", not " + Kind(got));
}

}  // namespace

bool HasField(const json& req, const char* key) {
  return Find(req, key) != nullptr;
}

uint64_t UintField(const json& req, const char* key, uint64_t def) {
  const json* v = Find(req, key);
  if (!v) return def;
  if (!v->is_number_unsigned()) Wrong(key, "an unsigned integer", *v);
  return v->get<uint64_t>();
}

int64_t IntField(const json& req, const char* key, int64_t def) {
  const json* v = Find(req, key);
  if (!v) return def;
  if (!v->is_number_integer() ||
      (v->is_number_unsigned() &&
       v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())))
    Wrong(key, "a 64-bit signed integer", *v);
  return v->get<int64_t>();
}

bool BoolField(const json& req, const char* key, bool def) {
  const json* v = Find(req, key);
  if (!v) return def;
  if (!v->is_boolean()) Wrong(key, "true or false", *v);
  return v->get<bool>();
}

std::string StringField(const json& req, const char* key, const std::string& def) {
  const json* v = Find(req, key);
  if (!v) return def;
  if (!v->is_string()) Wrong(key, "a string", *v);
  return v->get<std::string>();
}

bool PathField(const json& req, std::string* path) {
  const json* v = Find(req, "path");
  const json* hex = Find(req, "path_hex");
  if (v && hex) throw ControlFieldError("give \"path\" or \"path_hex\", not both");
  if (hex) {
    if (!hex->is_string()) Wrong("path_hex", "a string of hex digits", *hex);
    if (!FromHexBytes(hex->get_ref<const std::string&>(), path))
      throw ControlFieldError("\"path_hex\" must be an even number of hex digits");
    return true;
  }
  if (!v) return false;
  if (!v->is_string()) Wrong("path", "a string", *v);
  *path = v->get<std::string>();
  return true;
}

void PutName(json* j, const char* key, const std::string& bytes) {
  (*j)[key] = bytes;
  if (!ValidUtf8(bytes)) (*j)[std::string(key) + "_hex"] = HexBytes(bytes);
}

}  // namespace tierfs
