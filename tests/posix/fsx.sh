#!/usr/bin/env bash
# Data integrity: xfstests' fsx on a tierfs mount (`make fsx`).
#
#   bash tests/posix/fsx.sh /abs/build/tierfs /path/to/xfstests-source [OPS]
#
# fsx (ltp/fsx.c in github.com/kdave/xfstests) cannot be fetched in CI, so it
# is given as a source tree, built there if needed. Runs OPS operations
# (default 1000000) twice on one mount: with mmap reads and writes, and
# without (-R -W). The mount is removed whatever happens. Prints
# "fsx: OPS ops with mmap: ok|FAILED, without mmap: ok|FAILED" last; exits 1 on
# any failure.
set -uo pipefail
TIERFS=${1:?usage: fsx.sh TIERFS_BIN XFSTESTS_SRC [OPS]}
SRC=$(cd "${2:?usage: fsx.sh TIERFS_BIN XFSTESTS_SRC [OPS]}" && pwd)
OPS=${3:-1000000}
if [[ ! -x $SRC/ltp/fsx ]]; then
  (cd "$SRC" && make configure >/dev/null && ./configure >/dev/null && make -C lib >/dev/null &&
    make -C ltp fsx >/dev/null) || { echo "fsx.sh: could not build fsx in $SRC" >&2; exit 2; }
fi
ROOT=$(mktemp -d /var/tmp/tierfs-fsx.XXXXXX)
mkdir -p "$ROOT"/{ssd,hdd,mnt}
cleanup() {
  cd /
  fusermount3 -u "$ROOT/mnt" 2>/dev/null || umount -l "$ROOT/mnt" 2>/dev/null || true
  for _ in $(seq 50); do pgrep -f "tierfs --ssd $ROOT/ssd" >/dev/null || break; sleep 0.1; done
  rm -rf "$ROOT"
}
trap cleanup EXIT
"$TIERFS" --ssd "$ROOT/ssd" --hdd "$ROOT/hdd" "$ROOT/mnt" || exit 1
result=()
for mode in mmap nommap; do
  flags=() && [[ $mode == nommap ]] && flags=(-R -W)
  if "$SRC/ltp/fsx" -q -N "$OPS" -S 1 "${flags[@]}" -P "$ROOT" "$ROOT/mnt/fsx.$mode" \
    >"$ROOT/fsx.$mode.log" 2>&1; then
    result+=(ok)
  else
    result+=(FAILED)
    tail -n 40 "$ROOT/fsx.$mode.log"
  fi
done
echo "fsx: $OPS ops with mmap: ${result[0]}, without mmap: ${result[1]}"
[[ ${result[0]} == ok && ${result[1]} == ok ]]
