#!/usr/bin/env bash
# Tiering benchmarks (`make bench`, after run.sh):
#
#   bash bench/move.sh /abs/path/to/build/tierfs
#
# 1. move throughput: tierfs moving a directory of checkpoint-sized files from its SSD tier
#    to its HDD tier (setfattr user.tierfs.tier=hdd, unthrottled: --move-bandwidth 0) against
#    `cp -r` + `sync` between two raw directories on the same disk. Caches dropped first.
# 2. foreground write under moves: fio sequential write (1 MiB blocks, ending in fsync) on a
#    mount with the default throttle, idle and then while a directory moves to HDD and back,
#    again and again until the write ends (so moves run for all of it).
# Prints medians of BENCH_REPS (default 3) and the ratios (targets: >= 0.9 and >= 0.7).
set -uo pipefail
TIERFS=${1:?usage: move.sh /abs/path/to/tierfs}
REPS=${BENCH_REPS:-3}
QUICK=${BENCH_QUICK:-0}
DIV=1 && [[ $QUICK == 1 ]] && DIV=8
FILES=8 FILE_MB=$((256 / DIV)) FG_MB=$((2048 / DIV))
BASE=/var/tmp/tierfs-movebench.$$
OUT=$(cd "$(dirname "$0")/.." && pwd)/build/bench
mkdir -p "$OUT" "$BASE"
PID=''

log() { echo "[$(date +%T)] $*" >&2; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; return 0; }
now() { date +%s.%N; }
mibs() { awk -v mb="$1" -v a="$2" -v b="$3" 'BEGIN {printf "%.1f", mb / (b - a)}'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "ERR";
  else if (NR % 2) print v[(NR+1)/2]; else printf "%.1f\n", (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "-"}'; }

mount_tierfs() {  # mount_tierfs EXTRA_ARGS...
  rm -rf "$BASE/t" && mkdir -p "$BASE/t/ssd" "$BASE/t/hdd" "$BASE/t/mnt"
  "$TIERFS" --ssd "$BASE/t/ssd" --hdd "$BASE/t/hdd" -f "$@" "$BASE/t/mnt" \
    >>"$OUT/logs/movebench.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do mountpoint -q "$BASE/t/mnt" && return 0; sleep 0.1; done
  echo "tierfs did not mount (see $OUT/logs/movebench.log)" >&2
  exit 1
}
unmount_tierfs() {
  mountpoint -q "$BASE/t/mnt" && fusermount3 -u "$BASE/t/mnt"
  wait "$PID" 2>/dev/null
  PID=''
}
cleanup() {
  [[ -n $PID ]] && unmount_tierfs
  rm -rf --one-file-system "$BASE"
}
trap cleanup EXIT

fill() {  # fill DIR: FILES files of FILE_MB each
  mkdir -p "$1"
  for i in $(seq $FILES); do
    dd if=/dev/urandom of="$1/shard$i" bs=1M count=$FILE_MB status=none
  done
  sync
}

fg_write() {  # fg_write DIR TAG: MiB/s of a sequential write ending in fsync
  fio --directory="$1" --name=fg --filename=fg.dat --rw=write --bs=1M --size="${FG_MB}M" \
    --end_fsync=1 --ioengine=psync --output-format=json --output="$OUT/move-$2.json" \
    >/dev/null 2>&1 || { echo ERR; return; }
  rm -f "$1/fg.dat"
  python3 -c "import json,sys; t=open(sys.argv[1]).read(); j=json.loads(t[t.index('{'):]);
print('%.1f' % (j['jobs'][0]['write']['bw_bytes'] / 2**20))" "$OUT/move-$2.json"
}

mkdir -p "$OUT/logs"
declare -A S
TOTAL=$((FILES * FILE_MB))
for rep in $(seq "$REPS"); do
  log "move throughput rep $rep/$REPS: cp + sync"
  rm -rf "$BASE/raw" && fill "$BASE/raw/src"
  drop_caches
  t0=$(now); cp -r "$BASE/raw/src" "$BASE/raw/dst" && sync; t1=$(now)
  S[cp]+="$(mibs $TOTAL "$t0" "$t1") "
  rm -rf "$BASE/raw"

  log "move throughput rep $rep/$REPS: tierfs ssd -> hdd"
  mount_tierfs --move-bandwidth 0
  fill "$BASE/t/mnt/ckpt"
  drop_caches
  t0=$(now); setfattr -n user.tierfs.tier -v hdd "$BASE/t/mnt/ckpt"; t1=$(now)
  S[move]+="$(mibs $TOTAL "$t0" "$t1") "
  [[ $(getfattr --only-values -n user.tierfs.tier "$BASE/t/mnt/ckpt/shard1") == hdd ]] ||
    echo "move did not happen" >&2
  unmount_tierfs

  log "foreground write rep $rep/$REPS: idle, then during moves (default throttle)"
  mount_tierfs
  drop_caches
  S[idle]+="$(fg_write "$BASE/t/mnt" idle) "
  fill "$BASE/t/mnt/ckpt"
  drop_caches
  # Moves run for the whole foreground write: the directory goes to the HDD
  # tier and back until the write has ended.
  rm -f "$BASE/stop"
  (
    rounds=0
    while [[ ! -e $BASE/stop ]]; do
      setfattr -n user.tierfs.tier -v hdd "$BASE/t/mnt/ckpt" &&
        setfattr -n user.tierfs.tier -v ssd "$BASE/t/mnt/ckpt" || break
      rounds=$((rounds + 1))
    done
    log "moves during the foreground write: $rounds round trips of $TOTAL MiB"
  ) &
  mover=$!
  S[busy]+="$(fg_write "$BASE/t/mnt" busy) "
  touch "$BASE/stop"
  wait $mover
  unmount_tierfs
done

cp_m=$(median <<<"${S[cp]}") mv_m=$(median <<<"${S[move]}")
idle_m=$(median <<<"${S[idle]}") busy_m=$(median <<<"${S[busy]}")
echo
echo "tiering benchmark, $(date -Is); $FILES x $FILE_MB MiB files; fg write ${FG_MB} MiB; reps $REPS"
printf '%-48s %10s %10s %8s\n' workload tierfs baseline ratio
printf '%-48s %10s %10s %8s\n' "move ssd->hdd MiB/s (vs cp -r + sync)" "$mv_m" "$cp_m" "$(ratio "$mv_m" "$cp_m")"
printf '%-48s %10s %10s %8s\n' "fg seq write during moves MiB/s (vs idle)" "$busy_m" "$idle_m" "$(ratio "$busy_m" "$idle_m")"
echo "samples: move ${S[move]}| cp ${S[cp]}| busy ${S[busy]}| idle ${S[idle]}"
