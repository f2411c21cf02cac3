// tierctl's shared part (tools/tierctl.h): finding the mount and its daemon,
// the connection, and the formatting of sizes, dates and tables.
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "meta/text_format.h"
#include "tools/tierctl.h"

namespace tierctl {

namespace {

// /proc/self/mountinfo escapes blanks and backslashes as octal (\040).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out.push_back(char(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<MountEntry> Mounts() {
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point, field;
    f >> id >> parent >> dev >> root >> point;
    while (f >> field && field != "-") {
    }
    MountEntry m{Unescape(point), ""};
    f >> m.fstype;
    out.push_back(m);
  }
  return out;
}

namespace {

// The path `arg` names, absolute, with every directory resolved but its
// last component kept (a symlink is described, not followed).
bool Canonical(const std::string& arg, std::string* out, std::string* err) {
  std::string p = arg;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : p.substr(0, slash));
  std::string base = slash == std::string::npos ? p : p.substr(slash + 1);
  if (base == "." || base == ".." || base.empty()) {
    dir = p;
    base.clear();
  }
  char buf[PATH_MAX];
  if (!realpath(dir.c_str(), buf)) {
    *err = arg + ": " + strerror(errno);
    return false;
  }
  *out = buf;
  if (!base.empty()) *out += (out->back() == '/' ? "" : "/") + base;
  return true;
}

}  // namespace

bool FindMount(const std::string& arg, std::string* root, std::string* rel, std::string* err) {
  std::string path;
  if (!Canonical(arg, &path, err)) return false;
  const MountEntry* best = nullptr;
  const std::vector<MountEntry> mounts = Mounts();
  for (const MountEntry& m : mounts) {
    const bool inside = path == m.point || m.point == "/" ||
                        (path.compare(0, m.point.size(), m.point) == 0 &&
                         path.size() > m.point.size() && path[m.point.size()] == '/');
    if (inside && (!best || m.point.size() >= best->point.size())) best = &m;
  }
  if (!best || best->fstype != "fuse.tierfs") {
    *err = arg + ": not inside a tierfs mount";
    return false;
  }
  *root = best->point;
  if (*root == "/")
    *rel = path;
  else
    *rel = path.size() > root->size() ? path.substr(root->size()) : "/";
  return true;
}

bool Client::Connect(const std::string& root, std::string* err) {
  char sock[PATH_MAX];
  const ssize_t n = getxattr(root.c_str(), "user.tierfs.control", sock, sizeof sock - 1);
  if (n < 0 && errno == ENOTCONN) {
    *err = "tierfs mount " + root + ": its daemon is gone (" + strerror(errno) +
           "); unmount it (fusermount3 -u " + root + ") and mount it again";
    return false;
  }
  if (n < 0) {
    *err = "tierfs mount " + root + ": no control socket (" + strerror(errno) + ")";
    return false;
  }
  path_.assign(sock, size_t(n));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    *err = "control socket path " + path_ + " is too long";
    return false;
  }
  memcpy(addr.sun_path, path_.data(), path_.size());
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *err = "cannot reach the daemon of " + root + " at " + path_ + ": " + strerror(errno);
    return false;
  }
  timeval tv{120, 0};  // a daemon that answers nothing is reported, not waited for forever
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return true;
}
Client::~Client() {
  if (fd_ >= 0) close(fd_);
}

namespace {

// The daemon sends a name that is not valid UTF-8 as NAME (with U+FFFD
// for the bytes that are not) and NAME_hex (the exact bytes): NAME becomes
// those exact bytes again, so that a table shows them (ShownBytes) and two
// names that differ only there differ in a table too. JSON output dumps
// NAME with U+FFFD again, as the daemon sent it; NAME_hex stays exact.
void ShowNames(json* j) {
  if (j->is_array()) {
    for (json& e : *j) ShowNames(&e);
    return;
  }
  if (!j->is_object()) return;
  for (auto it = j->begin(); it != j->end(); ++it) {
    ShowNames(&it.value());
    const std::string& key = it.key();
    if (key.size() <= 4 || key.compare(key.size() - 4, 4, "_hex") != 0 || !it->is_string())
      continue;
    const std::string base = key.substr(0, key.size() - 4);
    std::string bytes;
    if (j->contains(base) && tierfs::FromHexBytes(it->get<std::string>(), &bytes))
      (*j)[base] = bytes;
  }
}

void Escape(unsigned char b, std::string* out) {
  char esc[8];
  snprintf(esc, sizeof esc, "\\x%02x", b);
  *out += esc;
}

}  // namespace

std::string ShownBytes(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b == '\\' || b == '\n' || b == '\t' || b == '\r') {
      out += b == '\\' ? "\\\\" : b == '\n' ? "\\n" : b == '\t' ? "\\t" : "\\r";
      ++i;
      continue;
    }
    if (b < 0x20 || b == 0x7f) {  // C0 controls (ESC among them) and DEL
      Escape(b, &out);
      ++i;
      continue;
    }
    if (b < 0x80) {
      out += char(b);
      ++i;
      continue;
    }
    // The longest valid UTF-8 sequence at i (2 to 4 bytes), else one byte.
    size_t len = 0;
    for (size_t n = 2; n <= 4 && i + n <= bytes.size() && !len; ++n)
      if (tierfs::ValidUtf8(bytes.substr(i, n))) len = n;
    // C1 controls (U+0080 to U+009F: a terminal takes U+009B as CSI) are
    // escaped byte by byte, as bytes that are not UTF-8 are.
    const bool c1 = len == 2 && b == 0xc2 && static_cast<unsigned char>(bytes[i + 1]) < 0xa0;
    if (len && !c1) {
      out.append(bytes, i, len);
      i += len;
      continue;
    }
    for (size_t k = 0; k < (c1 ? 2u : 1u); ++k)
      Escape(static_cast<unsigned char>(bytes[i++]), &out);
  }
  return out;
}

bool Client::Ask(const json& request, json* reply, std::string* err) {
  // A path that is not valid UTF-8 (a file name may be any bytes) goes as
  // "path_hex", which the daemon decodes, so that it arrives exactly.
  json req = request;
  const auto path = req.find("path");
  if (path != req.end() && path->is_string() && !tierfs::ValidUtf8(path->get<std::string>())) {
    req["path_hex"] = tierfs::HexBytes(path->get<std::string>());
    req.erase("path");
  }
  // Any other field that is not UTF-8 goes with U+FFFD rather than abort.
  const std::string line = req.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  std::string send_err;
  for (size_t off = 0; off < line.size();) {
    const ssize_t n = send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      send_err = "send to " + path_ + ": " + strerror(errno);
      // The daemon may have answered and closed before reading (a busy
      // reply to a new client): what it said is the error to report.
      if (errno != EPIPE && errno != ECONNRESET) {
        *err = send_err;
        return false;
      }
      break;
    }
    off += size_t(n);
  }
  size_t nl;
  while ((nl = buf_.find('\n')) == std::string::npos) {
    char chunk[65536];
    const ssize_t n = read(fd_, chunk, sizeof chunk);
    if (n <= 0) {
      *err = !send_err.empty()
                 ? send_err
                 : "no reply from " + path_ + (n < 0 ? ": " + std::string(strerror(errno)) : "");
      return false;
    }
    buf_.append(chunk, size_t(n));
  }
  *reply = json::parse(buf_.substr(0, nl), nullptr, false);
  buf_.erase(0, nl + 1);
  if (reply->is_discarded() || !reply->is_object()) {
    *err = "malformed reply from " + path_;
    return false;
  }
  ShowNames(reply);
  return true;
}

std::string Size(const json& v, const Flags& f) {
  if (!v.is_number()) return "-";
  const uint64_t b = v.get<uint64_t>();
  if (f.bytes || b < 1024) return std::to_string(b) + (f.bytes ? "" : " B");
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double x = double(b) / 1024;
  int u = 0;
  while (x >= 1024 && u < 5) x /= 1024, ++u;
  char buf[32];
  snprintf(buf, sizeof buf, x < 10 ? "%.1f %s" : "%.0f %s", x, kUnits[u]);
  return buf;
}

// "2026-12-05T12:40:26Z" as a local date and time.
std::string Date(const json& v) {
  if (!v.is_string()) return "-";
  struct tm tm = {};
  const std::string s = v.get<std::string>();
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return s;
  const time_t t = timegm(&tm);
  localtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
  return buf;
}

std::string Duration(int64_t s) {
  std::string out;
  const int64_t parts[] = {s / 86400, s / 3600 % 24, s / 60 % 60, s % 60};
  const char* units[] = {"d", "h", "m", "s"};
  for (int i = 0; i < 4; ++i)
    if (parts[i] || (i == 3 && out.empty()))
      out += (out.empty() ? "" : " ") + std::to_string(parts[i]) + units[i];
  return out;
}

const json& Field(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  const auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string Text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return JsonText(v, -1);
}

std::string JsonText(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

// Columns padded to their widest cell; `right` columns right-aligned.
void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right,
                const std::string& indent) {
  std::vector<size_t> width;
  // Every cell escaped (ShownBytes): a name with a newline or a terminal
  // escape in it is one cell on one line, never a forged row or raw bytes.
  std::vector<std::vector<std::string>> shown;
  shown.reserve(rows.size());
  for (const auto& r : rows) {
    shown.emplace_back();
    for (const std::string& cell : r) shown.back().push_back(ShownBytes(cell));
  }
  for (const auto& r : shown)
    for (size_t i = 0; i < r.size(); ++i)
      width.resize(std::max(width.size(), r.size())), width[i] = std::max(width[i], r[i].size());
  for (const auto& r : shown) {
    std::string line = indent;
    for (size_t i = 0; i < r.size(); ++i) {
      const std::string pad(width[i] - r[i].size(), ' ');
      const bool last = i + 1 == r.size();
      line += i < right.size() && right[i] ? pad + r[i] : r[i] + (last ? "" : pad);
      if (!last) line += "  ";
    }
    std::cout << line << "\n";
  }
}

std::string Percent(double f) {
  char buf[16];
  snprintf(buf, sizeof buf, "%.0f%%", f * 100);
  return buf;
}

bool Clients::AskAbout(const std::string& arg, json request, json* reply, std::string* root,
                       std::string* err) {
  std::string rel;
  bool ok = FindMount(arg, root, &rel, err);
  if (ok && !by_root_.count(*root)) {
    auto c = std::make_unique<Client>();
    ok = c->Connect(*root, err);
    if (ok) by_root_[*root] = std::move(c);
  }
  request["path"] = rel;
  if (ok) ok = by_root_[*root]->Ask(request, reply, err);
  if (ok && !reply->value("ok", false)) {
    *err = arg + ": " + Text((*reply)["error"]);
    ok = false;
  } else if (!ok && err->rfind(arg + ":", 0) != 0) {
    *err = arg + ": " + *err;
  }
  // The words go to a terminal, or into JSON (tierctl --json): escaped
  // once (ShownBytes), names and the daemon's words alike.
  if (!ok) *err = ShownBytes(*err);
  return ok;
}

bool NextOption(const std::vector<std::string>& args, size_t* i, std::string* opt,
                std::string* value, bool* is_opt) {
  *opt = args[*i];
  value->clear();
  const size_t eq = opt->find('=');
  *is_opt = opt->size() > 2 && opt->compare(0, 2, "--") == 0;
  if (*is_opt && eq != std::string::npos) {
    *value = opt->substr(eq + 1);
    opt->resize(eq);
  } else if (*is_opt) {
    if (*i + 1 >= args.size()) return false;
    *value = args[++*i];
  }
  return true;
}

int AskEachMount(const std::string& cmd, const std::vector<std::string>& paths, const Flags& f,
                 const EachReply& each) {
  auto refused = [&](const std::string& err) {
    std::cerr << "tierctl: " << cmd << " " << err << "\n";
    return 1;
  };
  std::vector<std::string> args = paths;
  if (args.empty()) {  // the mount of the working directory
    std::string root, rel, err;
    if (!FindMount(".", &root, &rel, &err)) return refused(err);
    args.push_back(root);
  }
  Clients clients;
  json all = json::array();
  int rc = 0;
  for (const std::string& p : args) {
    std::string root, err;
    json reply;
    if (!clients.AskAbout(p, {{"cmd", cmd}}, &reply, &root, &err)) {
      rc = refused(err);
      continue;
    }
    reply.erase("ok");
    reply["mountpoint"] = root;
    if (each(p, root, reply) != 0) rc = 1;
    if (f.json) all.push_back(std::move(reply));
  }
  if (f.json) std::cout << JsonText(all) << "\n";
  return rc;
}

}  // namespace tierctl
