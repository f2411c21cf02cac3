#!/usr/bin/env bash
# POSIX conformance: pjdfstest on a tierfs mount (`make pjdfstest`).
#
#   bash tests/posix/pjdfstest.sh /abs/build/tierfs /path/to/pjdfstest-source
#
# pjdfstest (github.com/pjd/pjdfstest) cannot be fetched in CI, so it is given
# as a source tree; it is built there if needed (autoconf, automake, gcc).
# The mount uses -o allow_other (the tests switch users) over two tier
# directories in a temporary root; the mount is removed whatever happens.
# Prints prove's summary and "pjdfstest: N files, F failed" last; exits 1 if
# any test file failed.
set -euo pipefail
TIERFS=${1:?usage: pjdfstest.sh TIERFS_BIN PJDFSTEST_SRC}
SRC=$(cd "${2:?usage: pjdfstest.sh TIERFS_BIN PJDFSTEST_SRC}" && pwd)
[[ $(id -u) == 0 ]] || { echo "pjdfstest.sh: must run as root" >&2; exit 2; }

if [[ ! -x $SRC/pjdfstest ]]; then
  (cd "$SRC" && autoreconf -ifs >/dev/null && ./configure -q >/dev/null && make -s pjdfstest)
fi

ROOT=$(mktemp -d /var/tmp/tierfs-pjdfstest.XXXXXX)
chmod 755 "$ROOT"
mkdir -p "$ROOT"/{ssd,hdd,mnt}
cleanup() {
  cd /
  fusermount3 -u "$ROOT/mnt" 2>/dev/null || umount -l "$ROOT/mnt" 2>/dev/null || true
  for _ in $(seq 50); do pgrep -f "tierfs --ssd $ROOT/ssd" >/dev/null || break; sleep 0.1; done
  rm -rf "$ROOT"
}
trap cleanup EXIT
"$TIERFS" --ssd "$ROOT/ssd" --hdd "$ROOT/hdd" -o allow_other "$ROOT/mnt"
cd "$ROOT/mnt"
set +e
prove -r "$SRC/tests" 2>&1 | tee "$ROOT/prove.log" | grep -vE '^\S+\.t \.+ ok$'
set -e
files=$(grep -oE 'Files=[0-9]+' "$ROOT/prove.log" | cut -d= -f2 || true)
# prove's summary lists each failed file once: "path/NN.t (Wstat: ...)".
failed=$(grep -cE '^\S+\.t +\(Wstat' "$ROOT/prove.log" || true)
echo "pjdfstest: ${files:-0} files, ${failed:-0} failed"
[[ -n $files && ${failed:-0} == 0 ]]
