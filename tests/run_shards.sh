#!/usr/bin/env bash
# Runs a GoogleTest binary as N shards at once (GTEST_TOTAL_SHARDS), each
# into its own log, then prints the logs in order and fails if any shard
# failed. The integration tests spend most of their time waiting on
# mounts, timeouts and kills, not on the CPU, so more shards than CI's two
# cores finish sooner (the Makefile says how many, and what it measured).
# Every test mounts its own temporary
# tiers, so shards do not share state.
#   tests/run_shards.sh N BINARY [ARGS...]
set -u
shards=$1
shift
logdir=$(mktemp -d /tmp/tierfs-shards.XXXXXX)
pids=()
for ((i = 0; i < shards; i++)); do
  GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i "$@" >"$logdir/$i.log" 2>&1 &
  pids+=($!)
done
rc=0
for ((i = 0; i < shards; i++)); do
  if ! wait "${pids[$i]}"; then rc=1; fi
done
for ((i = 0; i < shards; i++)); do
  echo "======== shard $((i + 1)) of $shards"
  cat "$logdir/$i.log"
done
for ((i = 0; i < shards; i++)); do
  grep -h -E '^\[  (PASSED|FAILED)  \]' "$logdir/$i.log" | sed "s/^/shard $((i + 1)): /"
done
rm -rf "$logdir"
exit $rc
