// What the control commands share (fs/control_commands.h is their contract;
// this header is for the files that implement them). Each command is one
// function of this shape, listed once in the table of
// fs/control_commands.cc; a file per group of commands.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "fs/control_commands.h"
#include "fs/peer_access.h"
#include "meta/inode.h"
#include "meta/status.h"

namespace tierfs {

class Context;
class Store;

using ControlCommand = nlohmann::json (*)(Context& c, const ControlInfo& info,
                                          const nlohmann::json& request, const ControlPeer& peer);

// fs/control_commands.cc
nlohmann::json ControlStatus(Context& c, const ControlInfo& info, const nlohmann::json& request,
                             const ControlPeer& peer);
// fs/control_where.cc
nlohmann::json ControlWhere(Context& c, const ControlInfo& info, const nlohmann::json& request,
                            const ControlPeer& peer);
// fs/control_views.cc: `where -r` (tree), `ls` and `du`.
nlohmann::json ControlTree(Context& c, const ControlInfo& info, const nlohmann::json& request,
                           const ControlPeer& peer);
nlohmann::json ControlLs(Context& c, const ControlInfo& info, const nlohmann::json& request,
                         const ControlPeer& peer);
nlohmann::json ControlDu(Context& c, const ControlInfo& info, const nlohmann::json& request,
                         const ControlPeer& peer);
// fs/control_gens.cc
nlohmann::json ControlGens(Context& c, const ControlInfo& info, const nlohmann::json& request,
                           const ControlPeer& peer);
// The generations of the running policy whose series instance is `dir`
// (clean, from ResolveForPeer) or below it and whose instance directory the
// peer may list, newest first per instance, as JSON objects (tierctl(1),
// gens); with `next`, each says what the policy will do to it next.
Status GenerationsBelow(Context& c, const std::string& dir, const ControlPeer& peer, bool next,
                        nlohmann::json* out);

// fs/control_policy.cc
nlohmann::json ControlPolicyShow(Context& c, const ControlInfo& info, const nlohmann::json& request,
                                 const ControlPeer& peer);
nlohmann::json ControlPolicyDryRun(Context& c, const ControlInfo& info,
                                   const nlohmann::json& request, const ControlPeer& peer);
nlohmann::json ControlPolicyReload(Context& c, const ControlInfo& info,
                                   const nlohmann::json& request, const ControlPeer& peer);
// fs/control_audit.cc
nlohmann::json ControlAudit(Context& c, const ControlInfo& info, const nlohmann::json& request,
                            const ControlPeer& peer);
// fs/control_audit_files.cc
nlohmann::json ControlAuditFiles(Context& c, const ControlInfo& info, const nlohmann::json& request,
                                 const ControlPeer& peer);
// fs/control_pins.cc
nlohmann::json ControlPin(Context& c, const ControlInfo& info, const nlohmann::json& request,
                          const ControlPeer& peer);
nlohmann::json ControlUnpin(Context& c, const ControlInfo& info, const nlohmann::json& request,
                            const ControlPeer& peer);
nlohmann::json ControlMove(Context& c, const ControlInfo& info, const nlohmann::json& request,
                           const ControlPeer& peer);
nlohmann::json ControlMoveStatus(Context& c, const ControlInfo& info, const nlohmann::json& request,
                                 const ControlPeer& peer);

// fs/control_verify.cc
nlohmann::json ControlVerify(Context& c, const ControlInfo& info, const nlohmann::json& request,
                             const ControlPeer& peer);

// fs/control_scrub.cc: `scrub` (start a pass) and status's "scrub" object.
nlohmann::json ControlScrub(Context& c, const ControlInfo& info, const nlohmann::json& request,
                            const ControlPeer& peer);
nlohmann::json ScrubStatusOf(Context& c);

// fs/control_fields.cc: the typed fields of a request. A field absent or
// null takes the default; a field of another type throws ControlFieldError,
// which HandleControl answers with EINVAL naming the command, the field and
// the type it must have (what() is e.g. "\"offset\" must be an unsigned
// integer, not a string"). Every command reads its fields through these.
class ControlFieldError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};
bool HasField(const nlohmann::json& request, const char* key);  // present, not null
uint64_t UintField(const nlohmann::json& request, const char* key, uint64_t def);
int64_t IntField(const nlohmann::json& request, const char* key, int64_t def);
bool BoolField(const nlohmann::json& request, const char* key, bool def);
std::string StringField(const nlohmann::json& request, const char* key, const std::string& def);
// The path a request names: "path" (a string), or "path_hex" (its bytes
// in hex: tierctl sends a path that is not valid UTF-8, which JSON cannot
// carry exactly, so); false when it names none.
bool PathField(const nlohmann::json& request, std::string* path);
// Names in replies: j[key] = bytes, and when they are not valid UTF-8
// (a file name may be any bytes) also j[key + "_hex"], their exact bytes in
// hex; the reply's dump shows j[key] with U+FFFD for what is not UTF-8.
void PutName(nlohmann::json* j, const char* key, const std::string& bytes);

// The error reply of `st`.
nlohmann::json ControlErrorOf(const Status& st);

// Resolves `path` (relative to the mount's root) in the store as the peer
// would: `..` above the root is EACCES, a symlink is never followed (ELOOP
// in the middle; described itself at the end), every directory on the way
// must grant the peer search permission. `clean` is the path it names
// ("/a/b"). Errors name the path.
Status ResolveForPeer(Context& c, const std::string& path, const ControlPeer& peer, Inode* out,
                      std::string* clean);

// Sets "series" and "generation" of `n` in `j`: the checkpoint series and
// generation the policy engine's last scan found it in (null outside any).
void AddSeriesAndGeneration(Context& c, const Inode& n, nlohmann::json* j);

// "file", "directory", "symlink" or "special".
const char* TypeName(const Inode& n);

}  // namespace tierfs
