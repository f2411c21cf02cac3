// What tierctl's commands share: finding the mount and its daemon from a
// path, one connection to a daemon's control socket (fs/control.h), and the
// human formatting every table uses (sizes in binary units unless -b, dates
// in local time, never epoch seconds). Each command is a function
// `int Cmd...(args, flags)` returning the exit status (0 success, 1 refused
// or failed, 2 bad usage), listed once in tools/tierctl.cc.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tierctl {

using nlohmann::json;

struct Flags {
  bool json = false;   // --json: print JSON instead of tables
  bool bytes = false;  // -b: sizes in bytes
};

struct MountEntry {
  std::string point, fstype;
};

// Every mount of /proc/self/mountinfo, in its order.
std::vector<MountEntry> Mounts();

// The tierfs mount holding `arg` (`root`) and `arg`'s path from that root
// (`rel`, "/" for the root itself); the last component of `arg` is not
// followed. False with `err` naming `arg` when it is not inside a tierfs
// mount or cannot be resolved.
bool FindMount(const std::string& arg, std::string* root, std::string* rel, std::string* err);

// One connection to a mount's daemon: a request line out, a reply line in.
class Client {
 public:
  Client() = default;
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Finds the socket through the root's user.tierfs.control and connects.
  bool Connect(const std::string& root, std::string* err);
  // False with `err` when the daemon cannot be reached or replies garbage;
  // a reply with "ok": false is still true here.
  bool Ask(const json& request, json* reply, std::string* err);

 private:
  int fd_ = -1;
  std::string path_, buf_;
};

// `bytes` (a name, or words naming one) as a table or message shows it,
// escaped as GNU ls -b does, in one form: a backslash as \\, newline, tab
// and carriage return as \n, \t and \r, every other control character
// (C0, ESC among them, DEL, and the two bytes of a C1 control U+0080 to
// U+009F) and each byte that is not part of valid UTF-8 as \xNN. Nothing
// reaches a terminal raw, one name is always one line, the result is valid
// JSON, and two different names are shown differently.
std::string ShownBytes(const std::string& bytes);
// `j` as --json prints it (indented by `indent`, -1: one line); names are
// exact (JSON escapes control characters itself), but one that is not
// valid UTF-8 shows U+FFFD for the bytes that are not, and never aborts
// the command (its exact bytes are in the NAME_hex fields).
std::string JsonText(const nlohmann::json& j, int indent = 2);

// Connections to every mount a command's PATH arguments reach, one each.
class Clients {
 public:
  // Sends `request` with "path" set to `arg`'s path inside its mount, to
  // that mount's daemon. On success `reply` is the daemon's reply with "ok"
  // true and `root` the mount. Otherwise `err` starts with `arg` and says
  // why (the daemon's own words when it refused).
  bool AskAbout(const std::string& arg, json request, json* reply, std::string* root,
                std::string* err);

 private:
  std::map<std::string, std::unique_ptr<Client>> by_root_;
};

// Word `*i` of a command that parses its own options: "--NAME=VALUE" and
// "--NAME VALUE" (which moves `*i` past VALUE) give `opt` "--NAME", `value`
// and `*is_opt` true; any other word is `opt` as it is. False when "--NAME"
// is the last word: its value is missing.
bool NextOption(const std::vector<std::string>& args, size_t* i, std::string* opt,
                std::string* value, bool* is_opt);

// What `scrub`, `verify` and `du` share: {"cmd": cmd} asked of the daemon
// of each of `paths` (the mount of the working directory when there are
// none), and `each` called with the PATH, its mount and the reply ("ok"
// removed, "mountpoint" added) to print it; with --json the replies are
// then printed as one array. A PATH refused or not in a tierfs mount is
// said on stderr ("tierctl: CMD ERR"). Returns 1 when a PATH was refused
// or `each` returned 1 (a finding that fails the command), else 0.
using EachReply = std::function<int(const std::string& path, const std::string& root, json& reply)>;
int AskEachMount(const std::string& cmd, const std::vector<std::string>& paths, const Flags& f,
                 const EachReply& each);

// "1.5 GiB" (or bytes with -b); "-" when `v` is not a number.
std::string Size(const json& v, const Flags& f);
// An RFC 3339 UTC string as a local date and time; "-" when not a string.
std::string Date(const json& v);
// "2d 3h 4m 5s".
std::string Duration(int64_t seconds);
// obj[key], or null when `obj` is not an object or lacks `key`: for fields
// a reply may leave out (operator[] of a const json must not be asked for
// a missing key).
const json& Field(const json& obj, const char* key);
// A JSON value as text: strings bare, null as "-".
std::string Text(const json& v);
// "42%".
std::string Percent(double fraction);
// A hold as words: "until DATE (rule, immutable)", "forever (rule)".
std::string HoldText(const json& hold);
// Columns padded to their widest cell; `right` columns right-aligned;
// each cell escaped (ShownBytes).
void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right,
                const std::string& indent = "");

// The commands (tools/tierctl_status.cc).
int CmdStatus(const std::vector<std::string>& args, const Flags& f);
int CmdWhere(const std::vector<std::string>& args, const Flags& f);
// tools/tierctl_policy.cc: args[0] is check, show, dry-run or reload.
int CmdPolicy(const std::vector<std::string>& args, const Flags& f);
// tools/tierctl_audit.cc: its own options (--since, --path, --action) are in args.
int CmdAudit(const std::vector<std::string>& args, const Flags& f);
// tools/tierctl_audit_verify.cc: after the word verify / export.
int CmdAuditVerify(const std::vector<std::string>& args, const Flags& f);
int CmdAuditExport(const std::vector<std::string>& args, const Flags& f);
// tools/tierctl_export.cc
int CmdExport(const std::vector<std::string>& args, const Flags& f);
// tools/tierctl_views.cc: where (with -r, else CmdWhere), ls, du, gens.
int CmdWhereViews(const std::vector<std::string>& args, const Flags& f);
int CmdLs(const std::vector<std::string>& args, const Flags& f);
int CmdDu(const std::vector<std::string>& args, const Flags& f);
int CmdGens(const std::vector<std::string>& args, const Flags& f);
// tools/tierctl_pins.cc: these get every argument after the command word
// and parse their own options.
int CmdPin(const std::vector<std::string>& args, const Flags& f);
int CmdUnpin(const std::vector<std::string>& args, const Flags& f);
int CmdMove(const std::vector<std::string>& args, const Flags& f);
// tools/tierctl_verify.cc
int CmdVerify(const std::vector<std::string>& args, const Flags& f);
// tools/tierctl_scrub.cc: `scrub`, and the scrub line of `status`
// (status's "scrub" object as words).
int CmdScrub(const std::vector<std::string>& args, const Flags& f);
std::string ScrubText(const json& scrub, const Flags& f);

}  // namespace tierctl
