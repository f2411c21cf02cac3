#include "fs/metrics_scrape.h"

#include "fs/context.h"
#include "fs/version.h"

namespace tierfs {

namespace {

void TierGauges(Context& c, Exposition& out) {
  struct Count {
    uint64_t files = 0, bytes = 0;
  } counts[2];
  // A walk of every inode, as `tierctl status` does; LMDB reads take no
  // lock a FUSE request waits for.
  const Status st = c.store().ForEachInode([&](const Inode& n) {
    if (n.is_reg() && n.nlink > 0) {
      Count& k = counts[size_t(n.tier)];
      ++k.files;
      k.bytes += n.size;
    }
    return Status::Ok();
  });
  Tier::Space space[2];
  bool have_space[2], healthy[2];
  for (TierId id : {TierId::kSsd, TierId::kHdd}) {
    have_space[size_t(id)] = c.tier(id).GetSpace(&space[size_t(id)]).ok();
    healthy[size_t(id)] = c.tier(id).CheckHealth().ok();
  }
  const bool all[2] = {true, true};
  // A family with one sample per tier that has its value.
  auto family = [&](const char* name, const char* help, auto value, const bool* present) {
    out.Family(name, help, "gauge");
    for (TierId id : {TierId::kSsd, TierId::kHdd})
      if (present[size_t(id)]) out.Sample(name, {{"tier", TierName(id)}}, value(size_t(id)));
  };
  family(
      "tierfs_tier_capacity_bytes", "Size of the filesystem holding the tier.",
      [&](size_t i) { return space[i].capacity; }, have_space);
  family(
      "tierfs_tier_free_bytes", "Bytes free for tierfs on the filesystem holding the tier.",
      [&](size_t i) { return space[i].free; }, have_space);
  if (st.ok()) {
    family(
        "tierfs_tier_files", "Regular files whose bytes live on the tier.",
        [&](size_t i) { return counts[i].files; }, all);
    family(
        "tierfs_tier_file_bytes", "Bytes of the regular files on the tier (their sizes).",
        [&](size_t i) { return counts[i].bytes; }, all);
  }
  family(
      "tierfs_tier_healthy", "1 while the tier can be used, 0 when gone, replaced or read-only.",
      [&](size_t i) { return uint64_t(healthy[i]); }, all);
}

}  // namespace

std::string ScrapeMetrics(Context& c) {
  Exposition out;
  out.Family("tierfs_build_info", "The daemon's version, as a label; always 1.", "gauge");
  out.Sample("tierfs_build_info", {{"version", kVersion}}, uint64_t(1));
  out.Family("tierfs_start_time_seconds", "When the daemon started, seconds since the epoch.",
             "gauge");
  out.Sample("tierfs_start_time_seconds", {}, double(c.metrics().start_ns()) / 1e9);
  TierGauges(c, out);
  const Placement::Load load = c.placement().load();
  out.Family("tierfs_moves_running", "Moves between tiers copying now.", "gauge");
  out.Sample("tierfs_moves_running", {}, uint64_t(load.running));
  out.Family("tierfs_move_queue_depth", "Moves waiting for a slot (--max-moves).", "gauge");
  out.Sample("tierfs_move_queue_depth", {}, uint64_t(load.queued));
  // Kept by the hasher itself: a counter like the others, read here.
  out.Family("tierfs_checksums_recorded_total",
             "Files whose checksums were recorded after their last writer closed, by how: "
             "computed from the writes as they passed, or read back from the tier.",
             "counter");
  const uint64_t streamed = c.hasher().recorded_streamed();
  out.Sample("tierfs_checksums_recorded_total", {{"how", "streamed"}}, streamed);
  out.Sample("tierfs_checksums_recorded_total", {{"how", "read"}},
             c.hasher().recorded() - streamed);
  return c.metrics().Render(out);
}

}  // namespace tierfs
