// tierctl: asks the daemon of a tierfs mount what it holds. It finds the
// daemon from any path inside the mount: the mount is the deepest entry of
// /proc/self/mountinfo above the path (it must be of type fuse.tierfs), and
// the read-only extended attribute user.tierfs.control of its root names the
// control socket (fs/control.h). See tierctl(1).
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fs/version.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace {

constexpr char kUsage[] =
    "Usage: tierctl [--json] [-b] status [PATH...]\n"
    "       tierctl [--json] [-b] where PATH...\n\n"
    "Asks the tierfs daemon of the mount that holds PATH (no socket to name):\n"
    "  status [PATH..] version, pid, uptime, mountpoint, policy file, SSD watermarks,\n"
    "                  and per tier its path, capacity, used, free, files and bytes\n"
    "                  (every tierfs mount when PATH is not given)\n"
    "  where PATH...   the tier, size, generation, hold, move state and object path\n"
    "                  of each file (for any user of the socket: paths they may stat)\n"
    "Exit status: 0 success, 1 refused or failed, 2 bad usage. See tierctl(1).\n\n"
    "Options";

struct Flags {
  bool json = false;
  bool bytes = false;
};

// A failure that names the path and the reason.
struct Failure {
  std::string message;
};

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

struct MountEntry {
  std::string point, fstype;
};

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

// The tierfs mount holding `arg`, and `arg`'s path from its root.
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

// One connection to a mount's daemon: a request line out, a reply line in.
class Client {
 public:
  bool Connect(const std::string& root, std::string* err) {
    char sock[PATH_MAX];
    const ssize_t n = getxattr(root.c_str(), "user.tierfs.control", sock, sizeof sock - 1);
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
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }

  bool Ask(const json& request, json* reply, std::string* err) {
    const std::string line = request.dump() + "\n";
    for (size_t off = 0; off < line.size();) {
      const ssize_t n = send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n < 0) {
        *err = "send to " + path_ + ": " + strerror(errno);
        return false;
      }
      off += size_t(n);
    }
    size_t nl;
    while ((nl = buf_.find('\n')) == std::string::npos) {
      char chunk[65536];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) {
        *err = "no reply from " + path_ + (n < 0 ? ": " + std::string(strerror(errno)) : "");
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
    return true;
  }

 private:
  int fd_ = -1;
  std::string path_, buf_;
};

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

std::string Text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// Columns padded to their widest cell; `right` columns right-aligned.
void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right,
                const std::string& indent = "") {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i)
      width.resize(std::max(width.size(), r.size())), width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
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

void PrintStatus(const json& s, const Flags& f) {
  std::cout << Text(s["mountpoint"]) << ": tierfs " << Text(s["version"]) << ", pid "
            << Text(s["pid"]) << ", up " << Duration(s.value("uptime_s", int64_t(0))) << " (since "
            << Date(s["started"]) << ")\n";
  const std::string policy = s.value("policy_file", std::string());
  PrintTable({{"state", Text(s["state"])},
              {"policy", policy.empty() ? "built-in" : policy},
              {"watermarks", "ssd high " + Percent(s["watermarks"].value("high", 0.0)) + ", low " +
                                 Percent(s["watermarks"].value("low", 0.0))}},
             {}, "  ");
  std::vector<std::vector<std::string>> rows = {
      {"TIER", "PATH", "CAPACITY", "USED", "FREE", "USE%", "FILES", "BYTES"}};
  for (const json& t : s["tiers"]) {
    const uint64_t cap = t.value("capacity", uint64_t(0));
    const uint64_t used = t.value("used", uint64_t(0));
    std::string name = Text(t["name"]);
    if (!t.value("healthy", true)) name += " (unhealthy: " + Text(t["error"]) + ")";
    rows.push_back({name, Text(t["path"]), Size(t["capacity"], f), Size(t["used"], f),
                    Size(t["free"], f), cap ? Percent(double(used) / double(cap)) : "-",
                    Text(t["files"]), Size(t["bytes"], f)});
  }
  PrintTable(rows, {false, false, true, true, true, true, true, true}, "  ");
}

std::string HoldText(const json& h) {
  if (!h.is_object()) return "-";
  std::string out = h["until"].is_null() ? "forever" : "until " + Date(h["until"]);
  if (!h.value("active", true)) out = "expired " + Date(h["until"]);
  out += " (" + Text(h["rule"]) + (h.value("immutable", false) ? ", immutable" : "") + ")";
  return out;
}

int CmdStatus(const std::vector<std::string>& args, const Flags& f) {
  std::vector<std::string> roots;
  int rc = 0;
  if (args.empty()) {
    for (const MountEntry& m : Mounts())
      if (m.fstype == "fuse.tierfs") roots.push_back(m.point);
    if (roots.empty()) {
      std::cerr << "tierctl: status: no tierfs mount found\n";
      return 1;
    }
  }
  for (const std::string& a : args) {
    std::string root, rel, err;
    if (!FindMount(a, &root, &rel, &err)) {
      std::cerr << "tierctl: status " << err << "\n";
      rc = 1;
    } else {
      roots.push_back(root);
    }
  }
  json all = json::array();
  for (const std::string& root : roots) {
    Client client;
    json reply;
    std::string err;
    if (!client.Connect(root, &err) || !client.Ask({{"cmd", "status"}}, &reply, &err)) {
      std::cerr << "tierctl: status " << root << ": " << err << "\n";
      rc = 1;
      continue;
    }
    if (!reply.value("ok", false)) {
      std::cerr << "tierctl: status " << root << ": " << Text(reply["error"]) << "\n";
      rc = 1;
      continue;
    }
    reply.erase("ok");
    if (f.json) {
      all.push_back(reply);
    } else {
      if (!all.empty()) std::cout << "\n";
      PrintStatus(reply, f);
      all.push_back(true);
    }
  }
  if (f.json) std::cout << all.dump(2) << "\n";
  return rc;
}

int CmdWhere(const std::vector<std::string>& args, const Flags& f) {
  std::map<std::string, std::unique_ptr<Client>> clients;  // by mount root
  std::vector<std::vector<std::string>> rows = {
      {"PATH", "TIER", "SIZE", "GEN", "HOLD", "STATE", "OBJECT"}};
  json all = json::array();
  int rc = 0;
  for (const std::string& a : args) {
    std::string root, rel, err;
    json reply;
    bool ok = FindMount(a, &root, &rel, &err);
    if (ok && !clients.count(root)) {
      auto c = std::make_unique<Client>();
      ok = c->Connect(root, &err);
      if (ok) clients[root] = std::move(c);
    }
    if (ok) ok = clients[root]->Ask({{"cmd", "where"}, {"path", rel}}, &reply, &err);
    if (ok && !reply.value("ok", false)) {
      ok = false;
      err = a + ": " + Text(reply["error"]);
    } else if (!ok && err.rfind(a + ":", 0) != 0) {
      err = a + ": " + err;
    }
    if (!ok) {
      std::cerr << "tierctl: where " << err << "\n";
      if (f.json) all.push_back({{"path", a}, {"ok", false}, {"error", err}});
      rc = 1;
      continue;
    }
    reply.erase("ok");
    reply["mountpoint"] = root;
    if (f.json) {
      reply["path"] = a;
      all.push_back(reply);
      continue;
    }
    std::string state = "-";
    if (reply.value("moving", false)) state = "moving";
    if (reply["type"] != "file") state = Text(reply["type"]);
    rows.push_back({a, reply.contains("tier") ? Text(reply["tier"]) : "-", Size(reply["size"], f),
                    Text(reply["generation"]), HoldText(reply["hold"]), state,
                    reply.contains("object") ? Text(reply["object"]) : "-"});
  }
  if (f.json)
    std::cout << all.dump(2) << "\n";
  else if (rows.size() > 1)
    PrintTable(rows, {false, false, true, true, false, false, false});
  return rc;
}

int Usage(const std::string& msg) {
  std::cerr << "tierctl: " << msg << " (see tierctl --help)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  std::string command;
  std::vector<std::string> args;
  po::options_description desc(kUsage);
  // clang-format off
  desc.add_options()
      ("help,h", "print this help and exit")
      ("version", "print the version and exit")
      ("json", po::bool_switch(&f.json), "print JSON (an array) instead of a table")
      ("bytes,b", po::bool_switch(&f.bytes), "print sizes in bytes");
  // clang-format on
  po::options_description hidden;
  hidden.add_options()("command", po::value(&command))("args", po::value(&args));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1).add("args", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return Usage(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "tierctl " << tierfs::kVersion << "\n";
    return 0;
  }
  if (command.empty()) return Usage("a command is required: status or where");
  if (command == "status") return CmdStatus(args, f);
  if (command == "where") {
    if (args.empty()) return Usage("where needs at least one PATH");
    return CmdWhere(args, f);
  }
  return Usage("unknown command '" + command + "' (known: status, where)");
}
