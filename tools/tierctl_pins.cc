// tierctl pin, unpin and move (tools/tierctl.h): manual holds and
// placement. These parse their own options (tools/tierctl.cc hands them
// every argument after the command word); bad usage exits 2.
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <thread>

#include "tools/tierctl.h"

namespace tierctl {

namespace {

struct PinArgs {
  std::optional<std::string> tier;
  std::optional<int64_t> until_ns, for_s;
  bool immutable = false;
  bool no_wait = false;
  std::vector<std::string> paths;
};

constexpr char kPastLatest[] =
    "after 2262-04-11T23:47:16Z, the latest end tierfs can hold (nanoseconds since 1970 in 64 "
    "bits)";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Bad(const std::string& cmd, const std::string& msg) {
  std::cerr << "tierctl " << cmd << ": " << msg << " (see tierctl --help)\n";
  return 2;
}

}  // namespace

// "30d", "12h", "90m", "45s", "1w" in seconds; nullopt when malformed.
std::optional<int64_t> ParseDurationArg(const std::string& s) {
  if (s.size() < 2) return std::nullopt;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9' || n > INT64_MAX / 10 / 604800) return std::nullopt;
    n = n * 10 + (s[i] - '0');
  }
  const char unit = s.back();
  const int64_t mult = unit == 's'   ? 1
                       : unit == 'm' ? 60
                       : unit == 'h' ? 3600
                       : unit == 'd' ? 86400
                       : unit == 'w' ? 604800
                                     : 0;
  if (mult == 0 || n <= 0) return std::nullopt;
  return n * mult;
}

// "2027-01-31" or "2027-01-31T12:00" (local time), or RFC 3339
// ("2027-01-31T12:00:00Z", "...+02:00"), as ns since the epoch.
std::optional<int64_t> ParseDateArg(const std::string& s) {
  struct tm tm = {};
  const char* end = strptime(s.c_str(), "%Y-%m-%d", &tm);
  if (!end) return std::nullopt;
  if (*end == 'T' || *end == ' ') {
    const char* t = strptime(end + 1, "%H:%M", &tm);
    if (!t) return std::nullopt;
    end = t;
    if (*end == ':') {
      t = strptime(end + 1, "%S", &tm);
      if (!t) return std::nullopt;
      end = t;
    }
  }
  time_t secs;
  if (*end == '\0') {
    tm.tm_isdst = -1;
    secs = mktime(&tm);
  } else if (*end == 'Z' && end[1] == '\0') {
    secs = timegm(&tm);
  } else if ((*end == '+' || *end == '-') && strlen(end) == 6 && end[3] == ':') {
    int hh = 0, mm = 0;
    if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
    const int off = (hh * 3600 + mm * 60) * (*end == '+' ? 1 : -1);
    secs = timegm(&tm) - off;
  } else {
    return std::nullopt;
  }
  if (secs == time_t(-1)) return std::nullopt;
  // Past 2262 nanoseconds no longer fit: the latest end tierfs can hold.
  if (int64_t(secs) > INT64_MAX / 1000000000) return INT64_MAX;
  return int64_t(secs) * 1000000000;
}

namespace {

// Parses the options of pin/unpin/move; returns 0, the exit status 2, or
// -1 after printing the command's usage (--help: exit 0).
int ParseArgs(const std::string& cmd, const std::vector<std::string>& args, Flags* f,
              PinArgs* out) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& name, std::string* v) {
      if (a.rfind(name + "=", 0) == 0) {
        *v = a.substr(name.size() + 1);
        return true;
      }
      if (a == name && i + 1 < args.size()) {
        *v = args[++i];
        return true;
      }
      return false;
    };
    std::string v;
    if (a == "--") {
      out->paths.insert(out->paths.end(), args.begin() + i + 1, args.end());
      break;
    } else if (a == "--help" || a == "-h") {
      std::cout << (cmd == "pin" ? "Usage: tierctl [--json] pin [--tier ssd|hdd] [--until DATE | "
                                   "--for DURATION] [--immutable] PATH...\n"
                    : cmd == "unpin" ? "Usage: tierctl [--json] unpin PATH...\n"
                                     : "Usage: tierctl [--json] [-b] move --to ssd|hdd [--no-wait] "
                                       "PATH...\n")
                << "See tierctl --help and tierctl(1).\n";
      return -1;
    } else if (a == "--json") {
      f->json = true;
    } else if (a == "-b" || a == "--bytes") {
      f->bytes = true;
    } else if (cmd == "pin" && a == "--immutable") {
      out->immutable = true;
    } else if (cmd == "move" && a == "--no-wait") {
      out->no_wait = true;
    } else if ((cmd == "pin" && value("--tier", &v)) || (cmd == "move" && value("--to", &v))) {
      if (v != "ssd" && v != "hdd") return Bad(cmd, "the tier must be ssd or hdd, not '" + v + "'");
      out->tier = v;
    } else if (cmd == "pin" && value("--until", &v)) {
      out->until_ns = ParseDateArg(v);
      if (!out->until_ns)
        return Bad(cmd, "--until '" + v + "': not a date (2027-01-31, 2027-01-31T12:00, RFC 3339)");
      if (*out->until_ns == INT64_MAX) return Bad(cmd, "--until '" + v + "': " + kPastLatest);
      if (*out->until_ns <= NowNs()) return Bad(cmd, "--until '" + v + "': in the past");
    } else if (cmd == "pin" && value("--for", &v)) {
      out->for_s = ParseDurationArg(v);
      if (!out->for_s) return Bad(cmd, "--for '" + v + "': not a duration (30d, 12h, 90m, 1w)");
      if (*out->for_s > INT64_MAX / 1000000000 - NowNs() / 1000000000)
        return Bad(cmd, "--for '" + v + "': would end " + kPastLatest);
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      return Bad(cmd, "unknown or incomplete option '" + a + "'");
    } else {
      out->paths.push_back(a);
    }
  }
  if (out->until_ns && out->for_s) return Bad(cmd, "give --until or --for, not both");
  if (cmd == "move" && !out->tier) return Bad(cmd, "--to ssd|hdd is required");
  if (out->paths.empty()) return Bad(cmd, "at least one PATH is required");
  return 0;
}

// PATH as given, or, when nothing has that name and it holds a glob
// character, what glob(3) makes of it (a quoted glob).
std::vector<std::string> Expand(const std::string& p) {
  struct stat st;
  if (lstat(p.c_str(), &st) == 0 || p.find_first_of("*?[") == std::string::npos) return {p};
  glob_t g = {};
  std::vector<std::string> out;
  if (glob(p.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  globfree(&g);
  if (out.empty()) out.push_back(p);  // says "no such file" below
  return out;
}

std::string Bar(const json& s, double elapsed_s, const Flags& f) {
  const uint64_t total = s.value("bytes", uint64_t(0)), done = s.value("copied", uint64_t(0));
  const double frac = total ? double(std::min(done, total)) / double(total) : 0.0;
  std::string bar(30, ' ');
  for (size_t i = 0; i < size_t(frac * 30); ++i) bar[i] = '#';
  const double rate = elapsed_s > 0 ? double(done) / elapsed_s : 0;
  std::string left = "-";
  if (rate > 0 && total > done) left = Duration(int64_t(double(total - done) / rate));
  return "[" + bar + "] " + Percent(frac) + " " + Size(json(done), f) + " of " +
         Size(json(total), f) + ", " + Size(json(uint64_t(rate)), f) + "/s, " + left + " left";
}

// Polls the move job `id` of `arg` until it ends; draws a bar on a
// terminal, a line a second otherwise. The final status goes to `out`.
bool WaitForJob(Clients& clients, const std::string& arg, uint64_t id, const Flags& f, json* out,
                std::string* err) {
  const bool tty = isatty(STDERR_FILENO) && !f.json;
  const auto start = std::chrono::steady_clock::now();
  auto last_line = start;
  for (;;) {
    // On the connection the move went out on: it stays busy, so the
    // daemon's idle timeout never closes it under the next PATH.
    json s;
    std::string root;
    if (!clients.AskAbout(arg, {{"cmd", "move_status"}, {"job", id}}, &s, &root, err)) return false;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    const std::string state = Text(s["state"]);
    if (tty) {
      std::cerr << "\r" << arg << " " << Bar(s, elapsed, f) << "\033[K" << std::flush;
    } else if (!f.json && now - last_line >= std::chrono::seconds(1) && state == "moving") {
      std::cerr << arg << ": " << Bar(s, elapsed, f) << "\n";
      last_line = now;
    }
    if (state == "done" || state == "failed") {
      if (tty) std::cerr << "\n";
      *out = s;
      if (state == "failed") *err = Text(s["error"]);
      return state == "done";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// One request per expanded PATH; `wait` polls the move job a reply names.
int Run(const std::string& cmd, const PinArgs& pa, const Flags& f,
        const std::function<json()>& make, bool wait,
        const std::function<std::string(const std::string&, const json&)>& say) {
  Clients clients;
  json all = json::array();
  int rc = 0;
  for (const std::string& given : pa.paths) {
    for (const std::string& a : Expand(given)) {
      std::string root, err;
      json reply;
      bool ok = clients.AskAbout(a, make(), &reply, &root, &err);
      if (ok && wait && reply.contains("job")) {
        json status;
        ok = WaitForJob(clients, a, reply["job"].get<uint64_t>(), f, &status, &err);
        reply["move"] = status;
        if (!ok && err.rfind(a, 0) != 0) err = a + ": " + err;
      }
      if (!ok) {
        std::cerr << "tierctl " << cmd << " " << err << "\n";
        if (f.json) all.push_back({{"path", a}, {"ok", false}, {"error", err}});
        rc = 1;
        continue;
      }
      reply["path"] = a;
      if (f.json)
        all.push_back(reply);
      else
        std::cout << say(a, reply) << "\n";
    }
  }
  if (f.json) std::cout << JsonText(all) << "\n";
  return rc;
}

std::string Until(const json& r) {
  return r["until"].is_null() ? "indefinitely" : "until " + Date(r["until"]);
}

}  // namespace

int CmdPin(const std::vector<std::string>& args, const Flags& global) {
  Flags f = global;
  PinArgs pa;
  if (int rc = ParseArgs("pin", args, &f, &pa)) return rc < 0 ? 0 : rc;
  return Run(
      "pin", pa, f,
      [&] {
        json req = {{"cmd", "pin"}, {"immutable", pa.immutable}};
        if (pa.tier) req["tier"] = *pa.tier;
        if (pa.until_ns) req["until_ns"] = *pa.until_ns;
        if (pa.for_s) req["for_s"] = *pa.for_s;
        return req;
      },
      true,
      [&](const std::string& a, const json& r) {
        return "pinned " + a + (r["tier"].is_null() ? "" : " to " + Text(r["tier"])) + " " +
               Until(r) + (r.value("immutable", false) ? ", immutable" : "") + " (" +
               Text(r["entries"]) + " entries)";
      });
}

int CmdUnpin(const std::vector<std::string>& args, const Flags& global) {
  Flags f = global;
  PinArgs pa;
  if (int rc = ParseArgs("unpin", args, &f, &pa)) return rc < 0 ? 0 : rc;
  return Run(
      "unpin", pa, f,
      [] {
        return json{{"cmd", "unpin"}};
      },
      false,
      [](const std::string& a, const json& r) {
        return "unpinned " + a + " (" + Text(r["removed"]) + " holds removed)";
      });
}

int CmdMove(const std::vector<std::string>& args, const Flags& global) {
  Flags f = global;
  PinArgs pa;
  if (int rc = ParseArgs("move", args, &f, &pa)) return rc < 0 ? 0 : rc;
  return Run(
      "move", pa, f,
      [&] {
        return json{{"cmd", "move"}, {"to", *pa.tier}};
      },
      !pa.no_wait,
      [&](const std::string& a, const json& r) {
        if (pa.no_wait)
          return "queued " + a + " for " + Text(r["to"]) + " (job " + Text(r["job"]) + ")";
        return "moved " + a + " to " + Text(r["to"]) + ": " + Text(r["move"]["files"]) +
               " files, " + Size(r["move"]["bytes"], f);
      });
}

}  // namespace tierctl
