#include "tiering/identity.h"
#include "meta/store.h"
#include "meta/text_format.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

namespace tierfs {

namespace {

std::string HexBytes(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

// EINVAL unless `hex` is an even number of hex digits.
Status FromHex(const std::string& hex, std::string* out) {
  const auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  out->clear();
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) break;
    out->push_back(char(hi << 4 | lo));
  }
  if (out->size() * 2 != hex.size()) return Status::Error(EINVAL, "identity: acl is not hex");
  return Status::Ok();
}

// Whether `s` can be a JSON string as it is (valid UTF-8); other names and
// values are written in hex.
bool IsUtf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
  return true;
}

// The xattrs as two objects, text ones as they are ("xattrs") and the others
// with name and value in hex ("xattrs_hex"); null for none of a kind.
void XattrsToJson(const std::map<std::string, std::string>& xattrs, nlohmann::ordered_json* text,
                  nlohmann::ordered_json* hex) {
  for (const auto& [name, value] : xattrs) {
    if (IsUtf8(name) && IsUtf8(value))
      (*text)[name] = value;
    else
      (*hex)[HexBytes(name)] = HexBytes(value);
  }
}

nlohmann::ordered_json ToJson(const ObjectIdentity& id, const std::string& path, bool truncated) {
  nlohmann::ordered_json j;
  // v2 records the extended attributes; readers of v1 ignore what they do not know.
  j["v"] = id.xattrs_recorded || id.xattrs_unknown ? 2 : 1;
  j["namespace"] = id.ns;
  j["ino"] = id.ino;
  j["path"] = path;
  if (truncated) j["path_truncated"] = true;
  j["size"] = id.size;
  j["mode"] = id.mode;
  j["uid"] = id.uid;
  j["gid"] = id.gid;
  j["mtime_ns"] = id.mtime_ns;
  j["ctime_ns"] = id.ctime_ns;
  j["xxh3"] = Hex64(id.xxh3);
  j["archived_ns"] = id.archived_ns;
  if (!id.access_acl.empty()) j["acl"] = HexBytes(id.access_acl);
  if (id.acl_unknown) j["acl_unknown"] = true;
  if (id.xattrs_unknown) {
    j["xattrs_unknown"] = true;
  } else if (id.xattrs_recorded) {
    nlohmann::ordered_json text, hex;
    XattrsToJson(id.xattrs, &text, &hex);
    if (!text.is_null()) j["xattrs"] = std::move(text);
    if (!hex.is_null()) j["xattrs_hex"] = std::move(hex);
  }
  return j;
}

std::string Dump(const nlohmann::ordered_json& j) {
  // A path that is not UTF-8 cannot be JSON as it is; its bad bytes become
  // U+FFFD (recovery then prefers the snapshot's name, which is exact).
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status WriteSidecar(const Tier& tier, uint64_t ino, const std::string& text) {
  const std::string path = tier.ObjectPath(ino) + kIdentitySidecarSuffix;
  const std::string tmp = path + ".tmp";
  Io& io = tier.io();
  const int fd = io.OpenAt(AT_FDCWD, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Errno(-fd, "create identity sidecar " + tmp);
  const ssize_t n = io.Pwrite(fd, text.data(), text.size(), 0);
  int rc = n < 0 ? int(n) : (size_t(n) != text.size() ? -EIO : io.Fsync(fd));
  close(fd);
  if (rc == 0) rc = io.RenameAt(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str());
  if (rc != 0) {
    io.UnlinkAt(AT_FDCWD, tmp.c_str(), 0);
    return Status::Errno(-rc, "write identity sidecar " + path);
  }
  return Status::Ok();
}

}  // namespace

bool IsArchivedXattr(const std::string& name) {
  return name.rfind("system.", 0) != 0 && name.rfind("user.tierfs.", 0) != 0;
}

Status ReadArchivedXattrs(Store& store, uint64_t ino, ObjectIdentity* id) {
  std::vector<std::string> names;
  Status st = store.ListXattr(ino, &names);
  id->xattrs.clear();
  for (size_t i = 0; st.ok() && i < names.size(); ++i) {
    if (!IsArchivedXattr(names[i])) continue;
    std::string value;
    st = store.GetXattr(ino, names[i], &value);
    if (st.ok()) id->xattrs[names[i]] = std::move(value);
    if (st.err() == ENODATA) st = Status::Ok();  // removed meanwhile
  }
  if (!st.ok())
    return Status::Error(st.err(), "extended attributes of inode " + std::to_string(ino) +
                                       " for its identity: " + st.message());
  id->xattrs_recorded = true;
  id->xattrs_unknown = false;
  return Status::Ok();
}

Status IdentityFromStore(Store& store, const Inode& n, const std::string& ns,
                         const std::string& path, uint64_t size, int64_t mtime_ns, uint64_t xxh3,
                         ObjectIdentity* out) {
  ObjectIdentity id;
  id.ns = ns;
  id.ino = n.ino;
  id.path = path;
  id.size = size;
  id.mode = n.mode;
  id.uid = n.uid;
  id.gid = n.gid;
  id.mtime_ns = mtime_ns;
  id.ctime_ns = n.ctime_ns;
  id.xxh3 = xxh3;
  id.archived_ns = NowNs();
  Status st = store.GetXattr(n.ino, kAccessAclXattr, &id.access_acl);
  if (!st.ok() && st.err() != ENODATA)
    return Status::Error(st.err(), "access ACL of inode " + std::to_string(n.ino) +
                                       " for its identity: " + st.message());
  st = ReadArchivedXattrs(store, n.ino, &id);
  if (!st.ok()) return st;
  *out = std::move(id);
  return Status::Ok();
}

std::string EncodeIdentity(const ObjectIdentity& given) {
  // Attributes over their room are flagged, not cut: a reader must not take
  // a part of them for all (it keeps the snapshot's instead).
  ObjectIdentity id = given;
  if (id.xattrs_recorded && !id.xattrs.empty()) {
    nlohmann::ordered_json text, hex;
    XattrsToJson(id.xattrs, &text, &hex);
    const size_t bytes =
        (text.is_null() ? 0 : Dump(text).size()) + (hex.is_null() ? 0 : Dump(hex).size());
    if (bytes > kMaxIdentityXattrBytes) {
      id.xattrs.clear();
      id.xattrs_recorded = false;
      id.xattrs_unknown = true;
    }
  }
  std::string text = Dump(ToJson(id, id.path, id.path_truncated));
  if (text.size() <= kMaxIdentityBytes) return text;
  // An ACL that would take half the room (about 100 entries) is replaced
  // by the flag that restricts the bytes to their owner, and the path keeps
  // its room.
  // The attributes have their own room and do not count here.
  ObjectIdentity bare = id;
  bare.xattrs.clear();
  if (!id.access_acl.empty() && Dump(ToJson(bare, "", true)).size() > kMaxIdentityBytes / 2) {
    ObjectIdentity flagged = id;
    flagged.access_acl.clear();
    flagged.acl_unknown = true;
    return EncodeIdentity(flagged);
  }
  // Cut the path by what is over (escapes can make the JSON longer than the
  // bytes cut, hence the loop), never inside a UTF-8 sequence.
  std::string path = id.path;
  while (text.size() > kMaxIdentityBytes && !path.empty()) {
    size_t keep = path.size() > text.size() - kMaxIdentityBytes
                      ? path.size() - (text.size() - kMaxIdentityBytes)
                      : 0;
    while (keep > 0 && (static_cast<unsigned char>(path[keep]) & 0xC0) == 0x80) --keep;
    path.resize(keep);
    text = Dump(ToJson(id, path, true));
  }
  return text;
}

Status DecodeIdentity(const std::string& text, ObjectIdentity* out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Error(EINVAL, "identity is not JSON");
  try {
    ObjectIdentity id;
    id.ns = j.at("namespace").get<std::string>();
    id.ino = j.at("ino").get<uint64_t>();
    id.path = j.value("path", std::string());
    id.path_truncated = j.value("path_truncated", false);
    id.size = j.at("size").get<uint64_t>();
    id.mode = j.at("mode").get<uint32_t>();
    id.uid = j.value("uid", 0u);
    id.gid = j.value("gid", 0u);
    id.mtime_ns = j.value("mtime_ns", int64_t(0));
    id.ctime_ns = j.value("ctime_ns", int64_t(0));
    id.xxh3 = std::stoull(j.at("xxh3").get<std::string>(), nullptr, 16);
    id.archived_ns = j.value("archived_ns", int64_t(0));
    Status st = FromHex(j.value("acl", std::string()), &id.access_acl);
    if (!st.ok()) return st;
    id.acl_unknown = j.value("acl_unknown", false);
    id.xattrs_unknown = j.value("xattrs_unknown", false);
    id.xattrs_recorded = j.value("v", 1) >= 2 && !id.xattrs_unknown;
    if (id.xattrs_recorded) {
      // Named, not iterated as temporaries: items() would outlive them.
      const nlohmann::json text = j.value("xattrs", nlohmann::json::object());
      const nlohmann::json hex = j.value("xattrs_hex", nlohmann::json::object());
      for (const auto& [name, value] : text.items()) id.xattrs[name] = value.get<std::string>();
      for (const auto& [hex_name, hex_value] : hex.items()) {
        std::string name, value;
        st = FromHex(hex_name, &name);
        if (st.ok()) st = FromHex(hex_value.get<std::string>(), &value);
        if (!st.ok()) return Status::Error(EINVAL, "identity: an xattr in xattrs_hex is not hex");
        id.xattrs[name] = std::move(value);
      }
    }
    *out = id;
  } catch (const std::exception& e) {
    return Status::Error(EINVAL, std::string("identity: ") + e.what());
  }
  return Status::Ok();
}

Status WriteIdentity(const Tier& tier, uint64_t ino, int fd, const ObjectIdentity& id,
                     bool* sidecar) {
  const std::string text = EncodeIdentity(id);
  const int rc = tier.io().Fsetxattr(fd, kIdentityXattr, text.data(), text.size(), 0);
  if (sidecar) *sidecar = rc == -ENOTSUP;
  if (rc == -ENOTSUP) return WriteSidecar(tier, ino, text);
  if (rc != 0)
    return Status::Errno(-rc, std::string("set ") + kIdentityXattr + " on " + tier.TempPath(ino) +
                                  " (" + tier.name() + " tier)");
  return Status::Ok();
}

Status ReadIdentity(const std::string& object_path, ObjectIdentity* out) {
  std::string buf(kMaxIdentityBytes + 512, '\0');
  ssize_t n = getxattr(object_path.c_str(), kIdentityXattr, buf.data(), buf.size());
  if (n < 0 && errno != ENODATA && errno != ENOTSUP)
    return Status::Errno(errno, std::string("read ") + kIdentityXattr + " of " + object_path);
  if (n < 0) {
    const std::string side = object_path + kIdentitySidecarSuffix;
    const int fd = open(side.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT)
        return Status::Error(ENODATA, "no identity (" + std::string(kIdentityXattr) +
                                          " or sidecar) on " + object_path);
      return Status::Errno(errno, "open " + side);
    }
    n = read(fd, buf.data(), buf.size());
    const int err = errno;
    close(fd);
    if (n < 0) return Status::Errno(err, "read " + side);
  }
  buf.resize(size_t(n));
  Status st = DecodeIdentity(buf, out);
  if (!st.ok()) return Status::Error(st.err(), st.message() + " (" + object_path + ")");
  return Status::Ok();
}

namespace {

std::vector<std::string> SortedNames(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') out.push_back(e->d_name);
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// An object's inode from its name (hex as ObjectRelPath spells it, nothing else).
bool ObjectIno(const std::string& name, uint64_t* ino) {
  if (name.empty() || name.size() > 16) return false;
  for (char c : name)
    if (!isxdigit(static_cast<unsigned char>(c)) || isupper(static_cast<unsigned char>(c)))
      return false;
  *ino = std::stoull(name, nullptr, 16);
  return true;
}

}  // namespace

bool SplitArchivedPath(const ObjectIdentity& id, std::vector<std::string>* dirs,
                       std::string* name) {
  dirs->clear();
  const std::string& path = id.path;
  if (path.empty() || path[0] != '/' || path.back() == '/' || id.path_truncated) return false;
  for (size_t pos = 1; pos <= path.size();) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty()) continue;
    if (part == "." || part == "..") return false;
    dirs->push_back(std::move(part));
  }
  if (dirs->empty()) return false;
  *name = std::move(dirs->back());
  dirs->pop_back();
  return true;
}

Status ForEachObject(const std::string& ns_dir,
                     const std::function<Status(uint64_t ino, const std::string& path)>& visit) {
  const std::string objects = ns_dir + "/objects";
  for (const std::string& fan : SortedNames(objects)) {
    for (const std::string& name : SortedNames(objects + "/" + fan)) {
      uint64_t ino = 0;
      if (!ObjectIno(name, &ino)) continue;
      Status st = visit(ino, objects + "/" + fan + "/" + name);
      if (!st.ok()) return st;
    }
  }
  return Status::Ok();
}

}  // namespace tierfs
