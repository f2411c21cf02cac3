#include "fs/control_commands.h"

#include <unistd.h>

#include <ctime>

#include "fs/context.h"
#include "fs/control_internal.h"
#include "fs/version.h"

namespace tierfs {

using nlohmann::json;

json ControlErrorOf(const Status& st) {
  return ControlError(st.err(), st.message());
}

namespace {

json PolicyOf(Context& c) {
  const PolicyRunner::Info p = c.policy_runner().GetInfo();
  json j = {{"file", p.file.empty() ? json(nullptr) : json(p.file)},
            {"loaded", UtcSeconds(p.loaded_ns)},
            {"last_reload_error", nullptr}};
  if (!p.last_error.empty())
    j["last_reload_error"] = {{"at", UtcSeconds(p.last_error_ns)}, {"error", p.last_error}};
  return j;
}

// Running and queued moves, and the bytes moved in the last minute.
json MovesOf(Context& c) {
  constexpr int64_t kWindowNs = 60'000'000'000;
  const Placement::Load load = c.placement().load();
  const uint64_t bytes = c.metrics().MovedBytesWithin(kWindowNs);
  return {{"running", load.running},
          {"queued", load.queued},
          {"bytes_last_minute", bytes},
          {"bytes_per_second", bytes / 60}};
}

json RecentErrorsOf(const ControlInfo& info) {
  json out = json::array();
  if (info.recent_errors)
    for (const std::string& line : info.recent_errors->last_formatted(kRecentErrors)) {
      std::string l = line;
      while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
      out.push_back(l);
    }
  return out;
}

}  // namespace

json ControlStatus(Context& c, const ControlInfo& info, const json&, const ControlPeer&) {
  struct Count {
    uint64_t files = 0, bytes = 0;
  } counts[2];
  uint64_t corrupt = 0;  // marked by verified reads (fs/verified_read.h)
  Status st = c.store().ForEachInode([&](const Inode& n) {
    if (n.is_reg() && n.nlink > 0) {
      if (n.corrupt()) ++corrupt;
      Count& k = counts[size_t(n.tier)];
      ++k.files;
      k.bytes += n.size;
    }
    return Status::Ok();
  });
  if (!st.ok()) return ControlErrorOf(st);
  json tiers = json::array();
  for (TierId id : {TierId::kSsd, TierId::kHdd}) {
    const Tier& t = c.tier(id);
    json j = {{"name", t.name()},
              {"path", t.root()},
              {"files", counts[size_t(id)].files},
              {"bytes", counts[size_t(id)].bytes}};
    Tier::Space space;
    Status sp = t.GetSpace(&space);
    if (sp.ok()) {
      j["capacity"] = space.capacity;
      j["free"] = space.free;
      j["used"] = space.capacity - std::min(space.free, space.capacity);
    } else {  // explicit nulls: a reader need not know which fields may be missing
      j["capacity"] = j["free"] = j["used"] = nullptr;
      j["error"] = sp.message();
    }
    Status health = t.CheckHealth();
    j["healthy"] = health.ok();
    if (!health.ok()) j["error"] = health.message();
    tiers.push_back(std::move(j));
  }
  const Watermarks marks = c.space().watermarks();
  const int64_t now = NowNs();
  return {{"ok", true},
          {"version", kVersion},
          {"pid", int64_t(getpid())},
          {"started", UtcSeconds(info.started_ns)},
          {"uptime_s", (now - info.started_ns) / 1000000000},
          {"mountpoint", info.mountpoint},
          {"state", info.state},
          {"policy_file", c.options().policy_file},
          {"watermarks", {{"high", marks.high}, {"low", marks.low}}},
          {"policy", PolicyOf(c)},
          {"moves", MovesOf(c)},
          {"corrupt_files", corrupt},
          {"scrub", ScrubStatusOf(c)},
          {"recent_errors", RecentErrorsOf(info)},
          {"tiers", std::move(tiers)}};
}

namespace {

struct NamedCommand {
  const char* name;
  ControlCommand run;
};

// Every command of the socket, in the order `known:` lists them.
// One command a line, so that added lines merge.
// clang-format off
constexpr NamedCommand kCommands[] = {
    {"status", ControlStatus},
    {"verify", ControlVerify},
    {"where", ControlWhere},
    {"tree", ControlTree},
    {"ls", ControlLs},
    {"du", ControlDu},
    {"gens", ControlGens},
    {"policy-show", ControlPolicyShow},
    {"policy-dry-run", ControlPolicyDryRun},
    {"policy-reload", ControlPolicyReload},
    {"audit", ControlAudit},
    {"audit_files", ControlAuditFiles},
    {"pin", ControlPin},
    {"unpin", ControlUnpin},
    {"move", ControlMove},
    {"move_status", ControlMoveStatus},
    {"scrub", ControlScrub},
};
// clang-format on

}  // namespace

json HandleControl(Context& c, const ControlInfo& info, const json& request,
                   const ControlPeer& peer) {
  const auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string())
    return ControlError(EINVAL, "request has no \"cmd\" string");
  const std::string name = cmd->get<std::string>();
  std::string known;
  for (const NamedCommand& k : kCommands) {
    known += (known.empty() ? "" : ", ") + std::string(k.name);
    if (name != k.name) continue;
    try {
      return k.run(c, info, request, peer);
    } catch (const ControlFieldError& e) {
      return ControlError(EINVAL, name + ": " + e.what());
    }
  }
  return ControlError(EOPNOTSUPP, "unknown command '" + name + "' (known: " + known + ")");
}

}  // namespace tierfs
