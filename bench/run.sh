#!/usr/bin/env bash
# tierfs benchmark harness (`make bench`).
#
#   bash bench/run.sh [--tmpfs] /abs/path/to/build/tierfs
#
# Runs the same write, fio and metadata workloads, interleaved rep by rep, against:
#   raw             the backing directory itself (no FUSE)
#   tierfs          tierfs, ssd tier and hdd tier = two directories on the same disk
#   passthrough_ll  libfuse's example low-level passthrough daemon (the FUSE floor)
#   mergerfs        mergerfs, ssd dir then hdd dir, in a typical SSD-cache pool setup
# and prints medians plus the ratios tierfs/raw, tierfs/passthrough_ll and tierfs/mergerfs
# (higher is better for every row: a ratio above 1 means tierfs is faster).
#
# Environment:
#   BENCH_REPS=3       repetitions per measurement; the median is reported
#   BENCH_QUICK=1      divide every size by 8 (and run randread for 2 s): a smoke run
#   BENCH_TMPFS=1      same as --tmpfs: back everything with a tmpfs, so FUSE is the limit
#   BENCH_TARGETS="raw tierfs passthrough_ll mergerfs"   which targets to run
#   BENCH_WORKLOADS="seq par randread smallread torch meta hddread"   which workloads to run
#                      (hddread: tierfs only, a cold read of an HDD-resident file verified
#                      block by block, then with --no-verify-reads, then through `tierfs view`
#                      of the HDD tier; the ratios to the unverified read are printed)
#   TIERFS_ARGS=...    extra tierfs arguments (e.g. "--threads 10 -o allow_other")
#   MERGERFS_OPTS=...  replaces our mergerfs -o options
# Outputs (report, fio JSON, daemon logs) go to build/bench/; data to /var/tmp.
set -uo pipefail  # no -e: a failed measurement is reported as ERR, the run goes on

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/build/bench
TMPFS=${BENCH_TMPFS:-0}
[[ ${1:-} == --tmpfs ]] && { TMPFS=1; shift; }
TIERFS=${1:-}
REPS=${BENCH_REPS:-3}
QUICK=${BENCH_QUICK:-0}
read -r -a TARGETS <<<"${BENCH_TARGETS:-raw tierfs passthrough_ll mergerfs}"
read -r -a TIERFS_EXTRA <<<"${TIERFS_ARGS:-}"
read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-seq par randread smallread torch meta hddread}"
ALL_TARGETS=(raw tierfs passthrough_ll mergerfs)

# Sizes in MiB. Quick mode shrinks all of them 8x.
DIV=1 && [[ $QUICK == 1 ]] && DIV=8
SEQ_MB=$((4096 / DIV)) PAR_MB=$((512 / DIV)) RR_MB=$((1024 / DIV)) NFILES=$((20000 / DIV))
RR_SECS=10 && [[ $QUICK == 1 ]] && RR_SECS=2
NJOBS=8 NDIRS=20

# mergerfs as the man page's "basic setup" (cache.files=partial + dropcacheonclose)
# combined with its "tiered caching" advice: cache branch first, create policy ff,
# spill to the next branch when the cache is full (moveonenospc).
MERGERFS_DEFAULT=allow_other,use_ino,cache.files=partial,dropcacheonclose=true
MERGERFS_OPTS=${MERGERFS_OPTS:-$MERGERFS_DEFAULT,category.create=ff,moveonenospc=true}

MODE=disk && [[ $TMPFS == 1 ]] && MODE=tmpfs
[[ $QUICK == 1 ]] && MODE+=-quick
BASE=/var/tmp/tierfs-bench.$$
RESULT=$OUT/results-$MODE.txt
declare -A PID MNT WORK SAMPLES FAILED
MOUNTED=() TARGETS_RUN=() NOTES=()
ROWS=(seqwrite seqwrite_rw seqread seqread_again parwrite randread smallread create stat list unlink
  hddread_verified hddread_unverified hddread_view)
# Checkpoint stalls of real PyTorch jobs (bench/ckpt.py), in seconds: lower is better.
STALL_ROWS=(torch_hf torch_ranks)
TORCH_STEPS=3 TORCH_RANKS=8 TORCH_RANK_MB=$((1024 / DIV)) TORCH_HF_MB=$((384 / DIV))
SMALL_FILES=$((20000 / DIV)) SMALL_THREADS=4

die() { echo "run.sh: $*" >&2; exit 1; }
has() { [[ " $1 " == *" $2 "* ]]; }  # has "LIST" WORD: is WORD in the space-separated LIST?
log() { echo "[$(date +%T)] $*" >&2; }
err() { log "$1: $2 failed (see $OUT/logs/)"; }  # err TARGET WHAT: a measurement failed

# ---- setup and teardown ---------------------------------------------------------------------

# passthrough_ll holds an O_PATH fd for every inode the kernel knows, so it needs more fds
# than the metadata run has files. Raise the limit for everything this script starts (as a
# deployment would); where the hard limit cannot be raised (no CAP_SYS_RESOURCE), shrink
# the file count to fit, for every target alike, rather than lose passthrough_ll's numbers.
raise_fd_limit() {
  ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  local limit
  limit=$(ulimit -n)
  if has "${TARGETS[*]}" passthrough_ll && ((NFILES + 512 > limit)); then
    local fit=$(((limit - 512) / 1000 * 1000))
    NOTES+=("fd limit $limit < $NFILES files + 512: metadata run shrunk to $fit files")
    NFILES=$fit
  fi
}

check_args() {
  for t in "${TARGETS[@]}"; do
    has "${ALL_TARGETS[*]}" "$t" || die "unknown target '$t' in BENCH_TARGETS"
  done
  if has "${TARGETS[*]}" tierfs && [[ ! -x $TIERFS ]]; then
    die "usage: run.sh [--tmpfs] /abs/path/to/tierfs (got '${TIERFS}')"
  fi
  command -v fio >/dev/null || die "fio not found: run 'make deps'"
  command -v python3 >/dev/null || die "python3 not found"
  [[ $(id -u) == 0 ]] || log "warning: not root, cannot drop caches: 'cold' reads are warm"
}

build_tools() {
  mkdir -p "$OUT/json" "$OUT/logs"
  g++ -O2 -std=c++20 -Wall -Wextra -o "$OUT/metabench" "$REPO/bench/metabench.cc" ||
    die "metabench build"
  g++ -O2 -std=c++20 -Wall -Wextra -pthread -o "$OUT/writebench" "$REPO/bench/writebench.cc" ||
    die "writebench build"
  g++ -O2 -std=c++20 -Wall -Wextra -pthread -o "$OUT/smallread" "$REPO/bench/smallread.cc" ||
    die "smallread build"
  if has "${TARGETS[*]}" passthrough_ll; then
    # Built from the Debian package's copy at run time; never vendored into the repo.
    local fuse
    read -r -a fuse <<<"$(pkg-config --cflags --libs fuse3)"
    gcc -O2 -o "$OUT/passthrough_ll" /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \
      "${fuse[@]}" || die "passthrough_ll build (is libfuse3-dev installed?)"
  fi
}

# Starts the daemon for target $1 in the foreground (-f) in the background, so its pid
# is ours to wait on after unmounting, and waits until the mount shows up.
mount_target() {
  local t=$1 dir=$BASE/$1
  if [[ $t == raw ]]; then mkdir -p "$dir/data" && WORK[$t]=$dir/data && return 0; fi
  MNT[$t]=$dir/mnt WORK[$t]=$dir/mnt
  mkdir -p "$dir/mnt" "$dir/ssd" "$dir/hdd" "$dir/state" "$dir/src"  # each uses some
  (
    case $t in  # exec: the subshell's pid, $!, becomes the daemon's
      tierfs) exec "$TIERFS" --ssd "$dir/ssd" --hdd "$dir/hdd" --state "$dir/state" -f \
        "${TIERFS_EXTRA[@]}" "$dir/mnt" ;;
      passthrough_ll) exec "$OUT/passthrough_ll" -f -o source="$dir/src" "$dir/mnt" ;;
      mergerfs) exec mergerfs -f -o "$MERGERFS_OPTS" "$dir/ssd:$dir/hdd" "$dir/mnt" ;;
    esac
  ) >"$OUT/logs/$t-$MODE.log" 2>&1 &
  PID[$t]=$!
  for _ in $(seq 300); do
    if mountpoint -q "$dir/mnt"; then MOUNTED+=("$t"); return 0; fi
    kill -0 "${PID[$t]}" 2>/dev/null || break
    sleep 0.1
  done
  FAILED[$t]="did not mount (log: $OUT/logs/$t-$MODE.log)"
  log "$t ${FAILED[$t]}:"; tail -n 5 "$OUT/logs/$t-$MODE.log" >&2
  kill "${PID[$t]}" 2>/dev/null; wait "${PID[$t]}" 2>/dev/null
  return 1
}

# Unmounts target $1 and waits for its daemon to exit (its tiers may be reused after).
unmount_target() {
  local t=$1 pid=${PID[$1]}
  # Not mounted any more if the daemon exited by itself (crash, or Ctrl-C reached it too).
  if mountpoint -q "${MNT[$t]}"; then
    # A busy mount (fio still closing files) gets one retry, then a lazy unmount.
    fusermount3 -u "${MNT[$t]}" 2>/dev/null || { sleep 1; fusermount3 -u "${MNT[$t]}"; } ||
      fusermount3 -uz "${MNT[$t]}"
  fi
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$t (pid $pid) still running 30 s after unmount; killing it"
    kill "$pid"
  fi
  wait "$pid" 2>/dev/null
}

# Runs on every exit, Ctrl-C included: nothing mounted or written may be left behind.
cleanup() {
  trap - EXIT INT TERM
  local t
  for t in "${MOUNTED[@]}"; do unmount_target "$t"; done
  MOUNTED=()
  mountpoint -q "$BASE/view" 2>/dev/null && { fusermount3 -u "$BASE/view" || umount -l "$BASE/view"; }
  if [[ $TMPFS == 1 ]] && mountpoint -q "$BASE"; then umount "$BASE" || umount -l "$BASE"; fi
  [[ -d $BASE ]] && rm -rf --one-file-system "$BASE"
}

# ---- measurements ---------------------------------------------------------------------------

drop_caches() {
  sync
  [[ $(id -u) == 0 ]] && echo 3 >/proc/sys/vm/drop_caches
  return 0
}

# fio_run TARGET TAG ARGS...: one fio job in the target's directory; JSON kept in build/bench.
FIO_JSON='' REP=0
fio_run() {
  local t=$1 tag=$2
  shift 2
  FIO_JSON=$OUT/json/$MODE-$t-$tag-$REP.json
  fio --directory="${WORK[$t]}" --ioengine=psync --fallocate=none --output-format=json \
    --output="$FIO_JSON" "$@" >/dev/null 2>>"$OUT/logs/fio-$MODE.log"
}

# fio_value read|write mib|iops: bandwidth in MiB/s or IOPS from the last fio_run's JSON.
# fio counts end_fsync inside the job's runtime, so write bandwidth includes the fsync.
fio_value() {
  python3 - "$FIO_JSON" "$1" "$2" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.index('{'):])['jobs'][0]  # skip any warnings before the JSON
if job['error']:
    sys.exit(1)
io = job[sys.argv[2]]
print('%.1f' % (io['bw_bytes'] / 2**20 if sys.argv[3] == 'mib' else io['iops']))
EOF
}

# record ROW TARGET VALUE: keeps one sample.
record() {
  [[ -n $3 ]] || return 1
  SAMPLES[$1,$2]+="$3 "
  echo "$MODE,$1,$2,$3" >>"$OUT/samples-$MODE.csv"
}

# measure ROW TARGET read|write mib|iops FIO_ARGS...: one fio job, kept as a sample of ROW.
measure() {
  local row=$1 t=$2 rw=$3 unit=$4 v
  shift 4
  if fio_run "$t" "$row" "$@" && v=$(fio_value "$rw" "$unit") && record "$row" "$t" "$v"; then
    return 0
  fi
  err "$t" "$row"
  return 1
}

# write_measure ROW TARGET WRITERS MIB_EACH: checkpoint-style writers (bench/writebench.cc:
# open O_WRONLY|O_CREAT|O_TRUNC, 1 MiB writes, fsync), kept as a sample of ROW.
write_measure() {
  local row=$1 t=$2 v
  if v=$("$OUT/writebench" "${WORK[$t]}" "$3" "$4" 2>>"$OUT/logs/writebench-$MODE.log") &&
    record "$row" "$t" "$(awk -F= '$1=="mib_per_s"{print $2}' <<<"$v")"; then
    return 0
  fi
  err "$t" "$row"
  return 1
}

wl_seq() {
  local t=$1 job=(--name=seq --filename=shard.0 --bs=1M --size="${SEQ_MB}M")
  drop_caches
  write_measure seqwrite "$t" 1 "$SEQ_MB"
  drop_caches  # the read must come from the backing store, not the page cache
  measure seqread "$t" read mib "${job[@]}" --rw=read
  # The first read after a write also measures this VM's memory: a page the host has
  # reclaimed costs about 12 us at its first touch, and the read's page cache lands in the
  # pages freed last. After raw's buffered writes those are the pages drop_caches just freed
  # (hot); tierfs's uncached writes freed theirs during the write, and the host had taken
  # them back (docs/BENCHMARKS.md, sixth run: 0.68-0.75 GB/s, 2.3 after touching 4 GiB of
  # memory first). The second cold read compares the read paths themselves.
  drop_caches
  measure seqread_again "$t" read mib "${job[@]}" --rw=read
  rm -f "${WORK[$t]}/shard.0"
  # The same write through fio, which opens O_RDWR: such descriptors may be mmap'ed, so tierfs
  # serves them through the page cache, not with direct I/O.
  drop_caches
  measure seqwrite_rw "$t" write mib "${job[@]}" --rw=write --end_fsync=1
  rm -f "${WORK[$t]}/shard.0"
}

wl_par() {
  local t=$1
  drop_caches
  write_measure parwrite "$t" "$NJOBS" "$PAR_MB"
  rm -f "${WORK[$t]}"/shard.*
}

# remount_tierfs [ARGS...]: tierfs again over the same tiers and state, with ARGS added.
remount_tierfs() {
  local saved=("${TIERFS_EXTRA[@]}")
  unmount_target tierfs
  TIERFS_EXTRA+=("$@")
  mount_target tierfs
  local rc=$?
  TIERFS_EXTRA=("${saved[@]}")
  return $rc
}

# A checkpoint read back from the HDD tier, cold: verified (every 1 MiB block checked against
# the checksum recorded at close, through tierfs) and unverified (--no-verify-reads: the
# kernel reads the object through passthrough). tierfs only; the mount is restored after.
wl_hddread() {
  local t=$1 job=(--name=hr --filename=hdd.dat --bs=1M --size="${SEQ_MB}M" --rw=read)
  [[ $t == tierfs ]] || return 0
  if [[ ! -f ${WORK[$t]}/hdd.dat ]]; then
    fio_run "$t" hddread_prep --name=hr --filename=hdd.dat --bs=1M --size="${SEQ_MB}M" \
      --rw=write --end_fsync=1 || { err "$t" hddread; return 1; }
    local _ moved=0
    for _ in $(seq 100); do  # EBUSY until the writer's release arrives
      setfattr -n user.tierfs.tier -v hdd "${WORK[$t]}/hdd.dat" 2>/dev/null && moved=1 && break
      sleep 0.1
    done
    [[ $moved == 1 ]] || { err "$t" "hddread (move to hdd)"; return 1; }
    # Unmeasured: the first read after the move also measures how the host caches freshly
    # written bytes (see wl_seq).
    drop_caches
    cat "${WORK[$t]}/hdd.dat" >/dev/null
  fi
  # Always verified, then unverified: each unverified read follows a verified one and each
  # verified read (but the first) an unverified one. An unverified read right after another
  # one ran at 1.9-5.0 GB/s on this VM, after a verified one at 1.0-1.6, while verified reads
  # (O_DIRECT) measured 1.4-2.3 after either: the host caches the guest's buffered reads of
  # the object, and a verified read's direct reads leave that cache cold (BENCHMARKS.md).
  drop_caches
  measure hddread_verified "$t" read mib "${job[@]}"
  remount_tierfs --no-verify-reads || { err "$t" "hddread (remount)"; return 1; }
  drop_caches
  measure hddread_unverified "$t" read mib "${job[@]}"
  remount_tierfs || { err "$t" "hddread (remount)"; return 1; }
  # The same file as another node reads it, through `tierfs view` of the HDD tier (fs/view.h),
  # which verifies each block against the sums in the snapshot the remounts took.
  local work=${WORK[$t]}
  mkdir -p "$BASE/view"
  "$TIERFS" view --hdd "$BASE/tierfs/hdd" --log "$OUT/logs/view-$MODE.log" "$BASE/view" ||
    { err "$t" "hddread (view mount)"; return 1; }
  WORK[$t]=$BASE/view
  drop_caches
  measure hddread_view "$t" read mib "${job[@]}"
  WORK[$t]=$work
  fusermount3 -u "$BASE/view" || fusermount3 -uz "$BASE/view"
}

wl_randread() {
  local t=$1 job=(--name=rr --filename=rr.dat --size="${RR_MB}M")
  if fio_run "$t" layout "${job[@]}" --rw=write --bs=1M --end_fsync=1; then
    drop_caches
    # O_DIRECT, so the row measures each stack down to the disk: buffered 4 KiB random reads
    # of this file are served mostly from readahead (through passthrough, tierfs read the
    # whole 128 MiB quick-mode file within 2 s: 120-160k "IOPS" against raw's 7.5k), which
    # says how big the file is, not how fast the disk is. The smallread row is the buffered
    # read pattern of data loaders.
    measure randread "$t" read iops "${job[@]}" --rw=randread --bs=4k --direct=1 --time_based \
      --runtime="$RR_SECS"
  else
    err "$t" "randread layout"
  fi
  rm -f "${WORK[$t]}/rr.dat"
}

# The data-loader pattern: small files opened, read whole and closed by 4 threads, cold.
wl_smallread() {
  local t=$1 d=${WORK[$1]}/small.$REP v
  mkdir -p "$d" || { err "$t" "smallread mkdir"; return; }
  if "$OUT/smallread" write "$d" "$SMALL_FILES" 2>>"$OUT/logs/smallread-$MODE.log"; then
    drop_caches
    if v=$("$OUT/smallread" read "$d" "$SMALL_FILES" "$SMALL_THREADS" \
      2>>"$OUT/logs/smallread-$MODE.log"); then
      record smallread "$t" "$(awk -F= '$1=="files_per_s"{print $2}' <<<"$v")"
    else
      err "$t" smallread
    fi
  else
    err "$t" "smallread layout"
  fi
  rm -rf "$d"
}

# Real PyTorch checkpoints (Debian's python3-torch, run with /usr/bin/python3): a Hugging
# Face-style save of model, optimizer and RNG state, and TORCH_RANKS ranks saving their
# shards at once (torch.distributed.checkpoint's layout). Each step's stall is a sample.
TORCH_OK=0
wl_torch() {
  local t=$1 d v
  [[ $TORCH_OK == 1 ]] || return 0
  for kind in hf ranks; do
    d=${WORK[$t]}/torch-$kind.$REP
    mkdir -p "$d" || { err "$t" "torch mkdir"; continue; }
    drop_caches
    if [[ $kind == hf ]]; then
      # model MiB: the optimizer adds twice that, so a step writes ~3x.
      v=$(/usr/bin/python3 "$REPO/bench/ckpt.py" hf "$d" "$TORCH_STEPS" $((TORCH_HF_MB / 3)) \
        2>>"$OUT/logs/torch-$MODE.log")
    else
      v=$(/usr/bin/python3 "$REPO/bench/ckpt.py" ranks "$d" "$TORCH_STEPS" "$TORCH_RANKS" \
        $((TORCH_RANK_MB / TORCH_RANKS)) 2>>"$OUT/logs/torch-$MODE.log")
    fi
    if [[ $? == 0 && -n $v ]]; then
      local s
      for s in $v; do record "torch_$kind" "$t" "$s"; done
    else
      err "$t" "torch $kind"
    fi
    rm -rf "$d"
  done
}

wl_meta() {
  local t=$1 d=${WORK[$1]}/meta.$REP out  # per rep: a failed rep's leftovers can't block
  mkdir -p "$d" || { err "$t" "metabench mkdir"; return; }
  drop_caches
  if out=$("$OUT/metabench" "$d" "$NFILES" "$NDIRS" 2>>"$OUT/logs/metabench-$MODE.log"); then
    record create "$t" "$(awk -F= '$1=="create_per_s"{print $2}' <<<"$out")"
    record stat "$t" "$(awk -F= '$1=="stat_warm_per_s"{print $2}' <<<"$out")"
    # Cold only: metabench drops the caches first, which needs root.
    if [[ $(awk -F= '$1=="list_cold"{print $2}' <<<"$out") == 1 ]]; then
      record list "$t" "$(awk -F= '$1=="list_per_s"{print $2}' <<<"$out")"
    fi
    record unlink "$t" "$(awk -F= '$1=="unlink_per_s"{print $2}' <<<"$out")"
  else
    err "$t" metabench
  fi
  rm -rf "$d"
}

# ---- report ---------------------------------------------------------------------------------

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "ERR";
  else if (NR % 2) print v[(NR+1)/2]; else printf "%.6g\n", (v[NR/2]+v[NR/2+1])/2}'; }
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "-"}'
}

print_header() {
  echo "tierfs benchmark, $(date -Is)"
  echo "kernel: $(uname -srm); nproc: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1);" \
    "memory: $(free -g | awk '/^Mem:/{print $2}') GiB"
  echo "backing: $MODE, $(df -hT "$BASE" | awk 'NR==2{print $1" ("$2")"}') under $BASE"
  echo "reps: $REPS (median reported); targets: ${TARGETS[*]}"
  echo "fio: $(fio --version); libfuse: $(pkg-config --modversion fuse3);" \
    "$(mergerfs --version 2>&1 | head -1)"
  echo "tierfs: ${TIERFS:-n/a} --ssd SSD --hdd HDD --state STATE -f ${TIERFS_ARGS:-}"
  # passthrough_ll's main() passes no max_threads to libfuse, whose default is then 10.
  echo "passthrough_ll: -f -o source=DIR" \
    "(defaults: multithreaded, max 10 threads, cache=auto, no writeback)"
  echo "mergerfs: -f -o $MERGERFS_OPTS SSD:HDD (threads default: one per core)"
  echo "writes: bench/writebench (O_WRONLY|O_CREAT|O_TRUNC as checkpoint writers open," \
    "1 MiB writes, fsync) except the O_RDWR row (fio)"
  echo "fio: ioengine=psync fallocate=none; caches dropped before every measurement;" \
    "ulimit -n $(ulimit -n)"
  local note
  for note in "${NOTES[@]}"; do echo "NOTE: $note"; done
}

label() {  # label ROW: the table's first column
  case $1 in
    seqwrite) echo "seq write ${SEQ_MB}M bs=1M +fsync MiB/s" ;;
    seqwrite_rw) echo "  same, O_RDWR (fio) MiB/s" ;;
    seqread) echo "seq read ${SEQ_MB}M cold MiB/s" ;;
    seqread_again) echo "  same, read again cold MiB/s" ;;
    parwrite) echo "${NJOBS}x${PAR_MB}M write +fsync MiB/s" ;;
    randread) echo "randread 4k O_DIRECT ${RR_MB}M ${RR_SECS}s IOPS" ;;
    smallread) echo "read ${SMALL_FILES} 4-128K files x${SMALL_THREADS}/s" ;;
    torch_hf) echo "torch HF-style save ~${TORCH_HF_MB}M stall s" ;;
    torch_ranks) echo "torch ${TORCH_RANKS} ranks x$((TORCH_RANK_MB / TORCH_RANKS))M stall s" ;;
    stat) echo "stat ${NFILES} (warm pass)/s" ;;
    list) echo "ls -l ${NFILES} files, cold/s" ;;
    hddread_verified) echo "read ${SEQ_MB}M on hdd, verified MiB/s" ;;
    hddread_unverified) echo "  same, --no-verify-reads MiB/s" ;;
    hddread_view) echo "  same, through tierfs view MiB/s" ;;
    *) echo "$1 ${NFILES} empty files/s" ;;
  esac
}

table_row() { printf '%-36s %10s %10s %14s %10s | %8s %9s %9s\n' "$@"; }

print_report() {
  local row t
  echo
  table_row workload raw tierfs passthrough_ll mergerfs t/raw t/pt_ll t/mergerfs
  for row in "${ROWS[@]}"; do
    local any=0
    for t in "${TARGETS_RUN[@]}"; do [[ -n ${SAMPLES[$row,$t]:-} ]] && any=1; done
    [[ $any == 1 ]] || continue  # its workload was not run (BENCH_WORKLOADS)
    declare -A med=()
    for t in "${ALL_TARGETS[@]}"; do
      med[$t]=-
      [[ -n ${FAILED[$t]:-} ]] && med[$t]=FAIL
      has "${TARGETS_RUN[*]}" "$t" && med[$t]=$(median <<<"${SAMPLES[$row,$t]:-}")
    done
    table_row "$(label "$row")" "${med[raw]}" "${med[tierfs]}" "${med[passthrough_ll]}" \
      "${med[mergerfs]}" "$(ratio "${med[tierfs]}" "${med[raw]}")" \
      "$(ratio "${med[tierfs]}" "${med[passthrough_ll]}")" \
      "$(ratio "${med[tierfs]}" "${med[mergerfs]}")"
    unset med
  done
  if [[ -n ${SAMPLES[hddread_verified,tierfs]:-} ]]; then
    echo "hdd read verified/unverified: $(ratio \
      "$(median <<<"${SAMPLES[hddread_verified,tierfs]}")" \
      "$(median <<<"${SAMPLES[hddread_unverified,tierfs]:-}")") (target >= 0.9)"
  fi
  if [[ -n ${SAMPLES[hddread_view,tierfs]:-} ]]; then
    echo "hdd read through tierfs view/unverified: $(ratio \
      "$(median <<<"${SAMPLES[hddread_view,tierfs]}")" \
      "$(median <<<"${SAMPLES[hddread_unverified,tierfs]:-}")")"
  fi
  print_stalls
  for t in "${!FAILED[@]}"; do echo "NOTE: $t ${FAILED[$t]}"; done
  for t in "${MOUNTED[@]}"; do
    kill -0 "${PID[$t]}" 2>/dev/null ||
      echo "NOTE: $t daemon exited during the run (log: $OUT/logs/$t-$MODE.log)"
  done
  echo
  echo "samples (row target: values):"
  for row in "${ROWS[@]}" "${STALL_ROWS[@]}"; do for t in "${TARGETS_RUN[@]}"; do
    [[ -n ${SAMPLES[$row,$t]:-} ]] && echo "  $row $t: ${SAMPLES[$row,$t]}"
  done; done
}

# spread VALUES: max - min, the width of the steps' stalls.
spread() { tr ' ' '\n' | grep . | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {if (NR == 0)
  print "ERR"; else printf "%.2f\n", hi-lo}'; }

# The stall table: median and spread (max - min) per target, and tierfs's median over the
# better of raw and mergerfs (lower is better; the target is at most 1.05).
print_stalls() {
  has "${WORKLOADS[*]}" torch || return 0
  [[ $TORCH_OK == 1 ]] || { echo "NOTE: torch rows skipped: $TORCH_WHY"; return; }
  echo
  printf '%-36s %14s %14s %14s | %12s\n' "checkpoint stall, s (median/spread)" raw tierfs \
    mergerfs "t/best(raw,m)"
  local row t
  for row in "${STALL_ROWS[@]}"; do
    declare -A cell=() med=()
    for t in raw tierfs mergerfs; do
      cell[$t]=- med[$t]=-
      if has "${TARGETS_RUN[*]}" "$t"; then
        med[$t]=$(median <<<"${SAMPLES[$row,$t]:-}")
        cell[$t]="${med[$t]}/$(spread <<<"${SAMPLES[$row,$t]:-}")"
      fi
    done
    local best
    best=$(awk -v a="${med[raw]}" -v b="${med[mergerfs]}" 'BEGIN {
      if (a+0 > 0 && (b+0 <= 0 || a+0 < b+0)) print a; else if (b+0 > 0) print b; else print "-" }')
    printf '%-36s %14s %14s %14s | %12s\n' "$(label "$row")" "${cell[raw]}" "${cell[tierfs]}" \
      "${cell[mergerfs]}" "$(ratio "${med[tierfs]}" "$best")"
    unset cell med
  done
}

# ---- main -----------------------------------------------------------------------------------

main() {
  check_args
  raise_fd_limit
  trap cleanup EXIT
  trap 'log interrupted; exit 130' INT
  trap 'log terminated; exit 143' TERM
  build_tools
  mkdir -p "$BASE"
  if [[ $TMPFS == 1 ]]; then
    # Room for the largest file twice (a tier copy in flight), with free space left above
    # mergerfs' default minfreespace (4G), under which it would refuse to create files.
    mount -t tmpfs -o size=$((2 * SEQ_MB + 6144))m tierfs-bench "$BASE" || die "tmpfs mount"
  fi
  exec > >(tee "$RESULT")
  : >"$OUT/samples-$MODE.csv"
  print_header
  local t ok=() wl
  for t in "${TARGETS[@]}"; do mount_target "$t" && ok+=("$t"); done
  TARGETS_RUN=("${ok[@]}")
  TORCH_WHY="/usr/bin/python3 cannot import torch (apt-get install python3-torch)"
  /usr/bin/python3 -c 'import torch' 2>/dev/null && TORCH_OK=1
  for wl in "${WORKLOADS[@]}"; do
    for REP in $(seq "$REPS"); do
      for t in "${TARGETS_RUN[@]}"; do
        log "$wl rep $REP/$REPS on $t"
        "wl_$wl" "$t"
      done
    done
  done
  print_report
  echo "report: $RESULT; samples: $OUT/samples-$MODE.csv; fio JSON: $OUT/json/"
}

main "$@"
