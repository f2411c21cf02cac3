#!/usr/bin/env bash
# make demo: mount tierfs over two temporary tiers with the built-in policy,
# write 12 checkpoints the way the Hugging Face Trainer does (temp dir,
# fsync, rename into place), and show what the policy did: the newest 3 on
# SSD, every 5th pinned on HDD, the rest thinned, all of it in the audit
# journal. Then unmount.
set -euo pipefail
tierfs=${1:?usage: demo.sh PATH_TO_TIERFS}
root=$(mktemp -d /tmp/tierfs-demo.XXXXXX)
mkdir -p "$root"/{ssd,hdd,mnt}
cleanup() {
  mountpoint -q "$root/mnt" && fusermount3 -u "$root/mnt"
  [ -n "${pid:-}" ] && wait "$pid" 2>/dev/null
  rm -rf "$root"
}
trap cleanup EXIT

echo "== mounting tierfs: ssd=$root/ssd hdd=$root/hdd on $root/mnt (foreground daemon, log below)"
# A short scan interval so the demo need not wait; a rename also triggers a scan.
"$tierfs" --ssd "$root/ssd" --hdd "$root/hdd" --scan-interval 2 -f "$root/mnt" &
pid=$!
for _ in $(seq 100); do mountpoint -q "$root/mnt" && break; sleep 0.1; done
mountpoint -q "$root/mnt" || { echo "tierfs did not mount"; exit 1; }

run="$root/mnt/runs/llama-demo"
mkdir -p "$run"
for step in $(seq 100 100 1200); do
  tmp="$run/tmp-checkpoint-$step"
  mkdir "$tmp"
  for rank in 0 1 2 3; do
    # Each rank writes its shard and fsyncs it, as torch.save + fsync does.
    dd if=/dev/urandom of="$tmp/model_rank$rank.pt" bs=1M count=4 conv=fsync status=none
  done
  echo "{\"global_step\": $step}" > "$tmp/trainer_state.json"
  mv "$tmp" "$run/checkpoint-$step"
  echo "wrote checkpoint-$step (4 shards x 4 MiB)"
  sleep 0.3  # a training step
done
sync -f "$run"

sleep 4  # one more scan after the last checkpoint

echo "== the tree, as any shell tool sees it (the built-in policy has run)"
ls -l "$run"
echo "== where each checkpoint lives, and its hold (getfattr, no tierctl needed)"
for d in "$run"/checkpoint-*; do
  printf '%-16s tier=%-4s %s\n' "$(basename "$d")" \
    "$(getfattr --only-values -n user.tierfs.tier "$d/model_rank0.pt" 2>/dev/null)" \
    "$(getfattr --only-values -n user.tierfs.pin "$d/model_rank0.pt" 2>/dev/null || echo "not pinned")"
done
echo "($(find "$root/ssd/ns" -path '*/objects/*' -type f | wc -l) objects on ssd, $(find "$root/hdd/ns" -path '*/objects/*' -type f | wc -l) on hdd)"
echo "== what the policy would do now (tierfs --dry-run)"
"$tierfs" --dry-run "$root/mnt" | head -20
echo "== the audit journal (first records of $(wc -l < "$root/ssd/state/audit.jsonl"))"
head -6 "$root/ssd/state/audit.jsonl"
df -h "$root/mnt"

echo "== unmounting"
fusermount3 -u "$root/mnt"
wait "$pid"
pid=
echo "demo done"
