// The built-in policy (tierfs --print-default-policy). It serves when no
// policy file is given, and tests hold it to the behaviour promised in
// tierfs.policy(5): newest 3 complete generations on SSD, every 5th kept on
// HDD for 90 days, the rest thinned once 3 newer complete ones exist, other
// files to HDD after an hour without access.
#include "policy/policy.h"
#include "policy/units.h"

namespace tierfs {

namespace {

// [tiers], [throttle], [scrub] and [pins] with the defaults of
// meta/limits.h, the only place they are written.
std::string LimitsText() {
  const TierLimits d;
  const ScrubLimits s;
  const PinLimits p;
  auto percent = [](double f) { return std::to_string(int(f * 100 + 0.5)) + "%"; };
  return "[tiers]\nssd_high_watermark = \"" + percent(d.watermarks.high) +
         "\"   # start moving data to HDD above this\nssd_low_watermark = \"" +
         percent(d.watermarks.low) + "\"    # stop below this\n\n[throttle]\nmove_bandwidth = \"" +
         std::to_string(d.move_bytes_per_sec >> 20) +
         "MiB\"    # per second, all moves together\nmax_moves = " + std::to_string(d.max_moves) +
         "\n\n[scrub]\ninterval = \"" + FormatDuration(s.interval_ns) +
         "\"    # re-read and check every HDD object this often; \"off\": never\nbandwidth = \"" +
         std::to_string(s.bytes_per_sec >> 20) + "MiB/s\"\n\n[pins]\nmax_user_immutable = \"" +
         FormatDuration(p.max_user_immutable_ns) +
         "\"    # longest immutable pin a user other than root may set; \"0\": none\n";
}

}  // namespace

const std::string& DefaultPolicyText() {
  static const std::string kText =
      "# tierfs built-in policy. See tierfs.policy(5).\n\n" + LimitsText() + R"toml(
# Hugging Face Trainer writes tmp-checkpoint-<step>/ and renames it.
[[series]]
name = "hf"
pattern = "**/checkpoint-{gen}"
kind = "dir"
complete = "rename"

# DeepSpeed: the text file `latest` names the last complete global_step<N>.
[[series]]
name = "deepspeed"
pattern = "**/global_step{gen}"
kind = "dir"
complete = "pointer:latest"

# Megatron-LM: latest_checkpointed_iteration.txt names the last complete iter_<N>.
[[series]]
name = "megatron"
pattern = "**/iter_{gen}"
kind = "dir"
complete = "pointer:latest_checkpointed_iteration.txt"

# torch.distributed.checkpoint / torchtitan: .metadata is written last.
[[series]]
name = "dcp"
pattern = "**/step-{gen}"
kind = "dir"
complete = "marker:.metadata"

# NeMo: <name>-unfinished exists next to a checkpoint while it is written.
[[series]]
name = "nemo"
pattern = "**/*--*step={gen}*"
kind = "any"
complete = ["absent:../{stem}-unfinished", "quiet:1m"]
exclude_names = ["*-unfinished"]

# PyTorch Lightning: written in place, so complete once closed and quiet;
# last.ckpt (a copy or a symlink) protects the generation it links to.
[[series]]
name = "lightning"
pattern = "**/epoch=*-step={gen}*.ckpt"
kind = "any"
complete = "quiet:2m"
pointers = ["last.ckpt"]

# Orbax: <step>/ or <prefix>_<step>/, renamed from *.orbax-checkpoint-tmp-*
# (or committed with commit_success.txt); a marker is required so that
# number-named data directories are never taken for checkpoints.
[[series]]
name = "orbax"
pattern = ["**/{gen}", "**/*_{gen}"]
kind = "dir"
complete = "marker:_CHECKPOINT_METADATA|commit_success.txt"

[[rule]]
name = "keep-newest-on-ssd"
series = "*"
keep_last = 3
action = "migrate"
to = "ssd"

[[rule]]
name = "retain-every-5th"
series = "*"
every_kth = 5
older_than_newest = 3
action = "pin"
to = "hdd"
for = "90d"

[[rule]]
name = "thin-superseded"
series = "*"
older_than_newest = 3
action = "thin"

# Everything the rules above did not place: files outside any series, and
# generations that are incomplete (abandoned, or not checkpoints at all).
[[rule]]
name = "idle-to-hdd"
idle_for = "1h"
action = "migrate"
to = "hdd"
)toml";
  return kText;
}

}  // namespace tierfs
