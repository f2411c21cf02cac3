#!/usr/bin/env bash
# make demo: mount tierfs over two temporary tiers, write a few
# checkpoint-like directories the way training jobs do (temp dir, fsync,
# rename into place), list them with where their data lives, unmount.
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
"$tierfs" --ssd "$root/ssd" --hdd "$root/hdd" -f "$root/mnt" &
pid=$!
for _ in $(seq 100); do mountpoint -q "$root/mnt" && break; sleep 0.1; done
mountpoint -q "$root/mnt" || { echo "tierfs did not mount"; exit 1; }

run="$root/mnt/runs/llama-demo"
mkdir -p "$run"
for step in 100 200 300 400 500; do
  tmp="$run/tmp-checkpoint-$step"
  mkdir "$tmp"
  for rank in 0 1 2 3; do
    # Each rank writes its shard and fsyncs it, as torch.save + fsync does.
    dd if=/dev/urandom of="$tmp/model_rank$rank.pt" bs=1M count=8 conv=fsync status=none
  done
  echo "{\"global_step\": $step}" > "$tmp/trainer_state.json"
  mv "$tmp" "$run/checkpoint-$step"
  echo "wrote checkpoint-$step (4 shards x 8 MiB)"
done
sync -f "$run"

echo "== the tree, as any shell tool sees it"
ls -l "$run"
du -sh "$run"/checkpoint-*
echo "== where the bytes live: one object per file on the SSD tier"
find "$root/ssd/objects" -type f | head -5
echo "($(find "$root/ssd/objects" -type f | wc -l) objects on ssd, $(find "$root/hdd/objects" -type f | wc -l) on hdd)"
df -h "$root/mnt"

echo "== unmounting"
fusermount3 -u "$root/mnt"
wait "$pid"
pid=
echo "demo done"
