#!/usr/bin/env bash
# make demo: mount tierfs over two temporary tiers with the built-in policy,
# write 12 checkpoints the way the Hugging Face Trainer does (temp dir,
# fsync, rename into place), and show what the policy did: the newest 3 on
# SSD, every 5th pinned on HDD, the rest thinned, all of it in the audit
# journal; then what tierctl shows of it (status, gens, where), and a manual
# move to the HDD tier with its progress bar. Then unmount.
set -euo pipefail
tierfs=${1:?usage: demo.sh PATH_TO_TIERFS PATH_TO_TIERCTL}
tierctl=${2:?usage: demo.sh PATH_TO_TIERFS PATH_TO_TIERCTL}
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
echo "== the mount, as tierctl status shows it"
"$tierctl" status "$root/mnt"
echo "== the checkpoint generations, newest first, and what the policy does next (tierctl gens)"
"$tierctl" gens "$run"
echo "== where the shards of the oldest kept checkpoints live (tierctl where)"
for d in $(ls -d "$run"/checkpoint-* | head -2); do "$tierctl" where "$d"/model_rank0.pt; done
echo "(the same without tierctl: getfattr -d -m user.tierfs FILE)"
getfattr -d -m user.tierfs "$run/checkpoint-1200/model_rank0.pt" 2>/dev/null | sed 's/^/  /'

echo "== a manual move: the newest checkpoint, with a consolidated 256 MiB file, to the HDD tier"
dd if=/dev/urandom of="$run/checkpoint-1200/consolidated.safetensors" bs=1M count=256 status=none
"$tierctl" move --to hdd "$run/checkpoint-1200"
"$tierctl" where -r "$run/checkpoint-1200"
echo "(a manual move is sticky: the policy leaves it on hdd until 'tierctl unpin')"
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
