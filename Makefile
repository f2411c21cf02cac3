# tierfs build. `make` builds build/tierfs; `make test` checks the format
# and the lock annotations (`make thread-check`, clang -Wthread-safety),
# runs unit and integration tests, then the same under ASan/UBSan, then the
# concurrent ones under ThreadSanitizer (`make test-tsan`, build-tsan/);
# `make bench` prints ratios against the raw tier, passthrough_ll and mergerfs.
CXX      ?= g++
OPTFLAGS ?= -O2 -g
CXXFLAGS := $(OPTFLAGS) -std=c++20 -Wall -Wextra -Werror -I. $(shell pkg-config --cflags fuse3 spdlog)
LDLIBS   := $(shell pkg-config --libs fuse3 spdlog) -llmdb -luring -lxxhash -lboost_program_options -lcrypto -lpthread
GTEST    := -lgtest -lpthread

# Debian packages the build, tests, demo and bench need.
DEB_PACKAGES := g++ make pkg-config fuse3 libfuse3-dev liblmdb-dev liburing-dev libboost-dev \
  libboost-program-options-dev libxxhash-dev libspdlog-dev libfmt-dev libssl-dev nlohmann-json3-dev libtoml11-dev libgtest-dev \
  attr acl psmisc clang-format clang fio mergerfs groff-base systemd e2fsprogs mount

BUILD ?= build
SRCS_LIB := $(wildcard meta/*.cc tiering/*.cc policy/*.cc) $(filter-out fs/main.cc,$(wildcard fs/*.cc))
OBJS_LIB := $(SRCS_LIB:%.cc=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/*.cc)
INTEG_SRCS := $(wildcard tests/integration/*.cc)

.PHONY: all deps test test-unit test-integration test-asan test-tsan thread-check bench crash-campaign demo format format-check clean install pjdfstest fsx
all: $(BUILD)/tierfs $(BUILD)/tierctl $(BUILD)/unit_tests $(BUILD)/integration_tests

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

# The tests' precompiled header (tests/precompiled.h says why): built per
# build directory with that build's flags. PCH=0 builds without it.
# With it, g++ 12 inlines std::string's copies differently and -Warray-bounds
# misfires on them (GCC PR 105329, in code as plain as push_back("x")): that
# one warning is not fatal in tests built with the header.
PCH ?= 1
PCH_CXXFLAGS := -include $(BUILD)/tests/precompiled.h -Wno-error=array-bounds
ifeq ($(PCH),1)
PCH_GCH := $(BUILD)/tests/precompiled.h.gch
$(PCH_GCH): tests/precompiled.h
	@mkdir -p $(dir $@)
	cp $< $(BUILD)/tests/precompiled.h
	$(CXX) $(CXXFLAGS) -MMD -MP -x c++-header -c $< -o $@
$(BUILD)/tests/%.o: tests/%.cc $(PCH_GCH)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(PCH_CXXFLAGS) -MMD -MP -c $< -o $@
endif

$(BUILD)/libtierfs.a: $(OBJS_LIB)
	ar rcs $@ $^

$(BUILD)/tierfs: $(BUILD)/fs/main.o $(BUILD)/libtierfs.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# tierctl parses policy files itself (`policy check`): the policy objects
# come from the library (the linker takes only what it uses).
$(BUILD)/tierctl: $(patsubst %.cc,$(BUILD)/%.o,$(wildcard tools/*.cc)) $(BUILD)/libtierfs.a
	$(CXX) $(CXXFLAGS) $^ -o $@ -lboost_program_options -lcrypto -lxxhash

# Where the test binaries' own objects are compiled. The ASan build links
# the plain build's (TEST_OBJS=build): what ASan must check is the daemon
# and the library the tests drive, and the test files compiled again with
# instrumentation cost CI several minutes (ASan compiles them 2.3x slower).
# Neither sanitizer changes the ABI, so the objects link as they are.
TEST_OBJS ?= $(BUILD)
$(BUILD)/unit_tests: $(UNIT_SRCS:%.cc=$(TEST_OBJS)/%.o) $(BUILD)/libtierfs.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) $(GTEST) -lgtest_main

$(BUILD)/integration_tests: $(INTEG_SRCS:%.cc=$(TEST_OBJS)/%.o) $(BUILD)/libtierfs.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) $(GTEST) -lgtest_main

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES)

test-unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

# Three shards at once (tests/run_shards.sh says why); INTEGRATION_SHARDS=1
# runs them one after another. On two cores, side by side (2026-12-07):
# plain 2m49 with two shards, 2m04 with three, 2m16 with four; ASan 332 s
# with two, 251 with three.
INTEGRATION_FILTER ?= *
INTEGRATION_SHARDS ?= 3
test-integration: $(BUILD)/tierfs $(BUILD)/tierctl $(BUILD)/integration_tests
	TIERFS_BIN=$(abspath $(BUILD)/tierfs) tests/run_shards.sh $(INTEGRATION_SHARDS) \
	  $(BUILD)/integration_tests --gtest_filter='$(INTEGRATION_FILTER)'

# The README's test command: installs what it needs, then runs everything,
# the sanitizer build included.
# Three builds (plain, ASan, TSan) must fit in CI's 30 minutes, so `test`
# builds them lighter than `make`, `make test-asan` or `make test-tsan` do:
#   - the plain build at -Og without debug information (-O2 -g: the daemon
#     you install, the demo and the bench); -Og compiles a sixth faster
#     than -O1;
#   - the ASan build without line tables (SAN_DEBUG=-g0): its reports
#     still name every function of a stack; rerun `make test-asan` (-g1)
#     for file:line. Not TSan: without line tables liburing's inlined
#     ring accesses lose their names, and tests/tsan.supp no longer
#     matches them;
#   - the clang lock analysis (thread-check, CPU) runs while the plain
#     integration tests (mostly waiting on mounts) do;
#   - the sanitizer builds compile the daemon, tierctl and the library,
#     not the test files: those are the plain build's (TEST_OBJS).
TEST_OPTFLAGS := -Og
# scanbench is built too, though only make bench runs it: it builds against
# the library's internals, and went stale once unnoticed.
test: deps
	$(MAKE) format-check
	$(MAKE) -j2 OPTFLAGS="$(TEST_OPTFLAGS)" all $(BUILD)/scanbench
	$(MAKE) OPTFLAGS="$(TEST_OPTFLAGS)" test-unit
	$(MAKE) thread-check & check=$$!; \
	  $(MAKE) OPTFLAGS="$(TEST_OPTFLAGS)" test-integration; tests=$$?; \
	  wait $$check || exit 1; exit $$tests
	$(MAKE) SAN_DEBUG=-g0 test-asan
	$(MAKE) OPTFLAGS="$(TEST_OPTFLAGS)" test-tsan

# Line tables in the sanitizer builds: file:line in every report.
SAN_DEBUG ?= -g1

# ThreadSanitizer over the unit tests and the integration tests that run
# concurrent work: threads of their own, tree moves, moves, the evictor, the
# policy engine, a short crash campaign. The daemon they mount is the TSan
# build too, so its threads are checked. halt_on_error: the first race
# fails the run (in the daemon: the test, see TierfsMount). tests/tsan.supp
# says why liburing is suppressed.
# The TSan build compiles only what it runs (CI's 30 minutes): the daemon,
# and the unit tests that start threads (not the parsers, the evaluator, the
# journal and record formats: TSan has nothing to check in them). The
# integration tests' own binary and the tierctl they run are the plain
# ones: the threads TSan must see are the daemon's.
TSAN_FILTER := ConcurrencyTest.*:ViewTest.*:MetricsTest.*:TreeMoveLockTest.*:DaemonStateTest.TreeMove*:TieringTest.*:ThrottledTieringTest.*:EvictionTest.*:*SpillTest.*:SpilledWriteTest.*:PolicyEngineTest.*:MoveLogTest.*:CrashCampaign.*:DataTest.ConcurrentWriters:DataTest.ManyConcurrentOpensReadsAndAWriterNeverFail:ControlTest.TwoHundredClientsAtOnce:ControlTest.StalledClientsDoNotBlockOthers:VerifiedReadTest.ReadersClosingRightAfterTheirReadsLeaveTheDaemonWhole:VerifiedReadTest.SumsRecordedAtCloseAndReplacedByARewrite:VerifiedReadTest.ParallelReadsOfOneDescriptorAreExactAndOnlyTheBadBlockFails:VerifiedReadTest.WholeBlockReadsIntoTheRingAreExactAndTheBadBlockIsEio:ScrubTest.*:ThrottledScrubTest.*
TSAN_UNIT_SRCS := $(filter-out $(addprefix tests/unit/,policy_parse_test.cc \
  policy_parse_fuzz_test.cc policy_eval_test.cc policy_series_test.cc policy_safety_test.cc \
  policy_check_test.cc mount_args_test.cc audit_chain_test.cc audit_rotate_test.cc \
  audit_mirror_test.cc fault_io_test.cc op_guard_test.cc store_errors_test.cc store_journal_test.cc \
  store_keys_test.cc store_room_test.cc identity_test.cc),$(UNIT_SRCS))
TSAN_ENV := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(abspath tests/tsan.supp)"
test-tsan: $(BUILD)/tierctl $(BUILD)/integration_tests
	$(MAKE) -j2 BUILD=build-tsan OPTFLAGS="-O1 $(SAN_DEBUG) -fsanitize=thread" \
	  UNIT_SRCS='$(TSAN_UNIT_SRCS)' build-tsan/tierfs build-tsan/unit_tests
	$(TSAN_ENV) build-tsan/unit_tests
	$(TSAN_ENV) TIERFS_CRASH_KILLS=3 TIERFS_BIN=$(abspath build-tsan/tierfs) \
	  TIERCTL_BIN=$(abspath $(BUILD)/tierctl) \
	  tests/run_shards.sh $(INTEGRATION_SHARDS) $(BUILD)/integration_tests --gtest_filter='$(TSAN_FILTER)'

# Clang's thread-safety analysis (meta/thread_annotations.h): every member
# marked GUARDED_BY is touched only with its Mutex held. Syntax only, so
# cheap; g++ ignores the annotations, hence clang++ here. Only the files
# that include the annotations (through any header) have anything to check.
THREAD_CHECK_SRCS := $(wildcard meta/*.cc tiering/*.cc policy/*.cc fs/*.cc tools/*.cc)
CLANG_FLAGS := -std=c++20 -Wall -Wextra -Wthread-safety -Werror -I. $(shell pkg-config --cflags fuse3 spdlog)
thread-check:
	for f in $(THREAD_CHECK_SRCS); do \
	  clang++ $(CLANG_FLAGS) -MM $$f | grep -q 'meta/thread_annotations.h' && echo $$f; \
	done | xargs -P2 -n4 clang++ -fsyntax-only $(CLANG_FLAGS)

# The test files themselves are the plain build's (TEST_OBJS above).
TEST_OBJS_PLAIN := $(UNIT_SRCS:%.cc=$(BUILD)/%.o) $(INTEG_SRCS:%.cc=$(BUILD)/%.o)
# -Og, not -O1: with UBSan, g++ 12 compiles at -O1 two to three times
# slower than at -Og (the whole library: 6 minutes against 3 on CI's two
# cores), and the checks are the same.
ASAN_MAKE = $(MAKE) BUILD=build-asan TEST_OBJS=$(BUILD) \
  OPTFLAGS="-Og $(SAN_DEBUG) -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
test-asan:
	$(MAKE) -j2 $(TEST_OBJS_PLAIN)
	$(ASAN_MAKE) -j2 all
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 TIERFS_MOVE_KILLS=15 \
	  $(ASAN_MAKE) INTEGRATION_FILTER='$(ASAN_FILTER)' test-unit test-integration

# The random kill campaign runs plain (12 kills) and under TSan (3); under
# ASan its kill -9s stop the daemons before any leak check, and it would
# cost a minute of CI's 30 (recovery under ASan is MoveCrashTest's, with 15
# kills instead of 50: a restart under ASan costs several times as much).
ASAN_FILTER := -CrashCampaign.*

$(BUILD)/scanbench: $(BUILD)/bench/scanbench.o $(BUILD)/libtierfs.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# Only the benchmark's real PyTorch jobs need it (large; not for CI).
BENCH_PACKAGES := python3-torch

bench: deps
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(BENCH_PACKAGES)
	$(MAKE) -j2 $(BUILD)/tierfs $(BUILD)/scanbench
	bash bench/run.sh $(abspath $(BUILD)/tierfs)
	bash bench/move.sh $(abspath $(BUILD)/tierfs)
	rm -rf /var/tmp/tierfs-scanbench && mkdir -p /var/tmp/tierfs-scanbench
	$(BUILD)/scanbench /var/tmp/tierfs-scanbench 1000000; rm -rf /var/tmp/tierfs-scanbench

# The full crash campaign of crash_campaign_test.cc: 200 kill -9 (the
# normal test run does 12); TIERFS_CRASH_SEED=N repeats a run's workload.
crash-campaign: $(BUILD)/tierfs $(BUILD)/integration_tests
	TIERFS_CRASH_KILLS=$${TIERFS_CRASH_KILLS:-200} TIERFS_TEST_TIMEOUT=7200 \
	  TIERFS_BIN=$(abspath $(BUILD)/tierfs) $(BUILD)/integration_tests --gtest_filter='CrashCampaign.*'

# POSIX conformance and data integrity on a mount. Neither suite can be
# fetched in CI, so each is given as a source tree (built there if needed):
#   make pjdfstest PJDFSTEST=/path/to/pjdfstest   (github.com/pjd/pjdfstest)
#   make fsx XFSTESTS=/path/to/xfstests [FSX_OPS=1000000]   (its ltp/fsx.c)
pjdfstest: $(BUILD)/tierfs
	bash tests/posix/pjdfstest.sh $(abspath $(BUILD)/tierfs) $(PJDFSTEST)

FSX_OPS ?= 1000000
fsx: $(BUILD)/tierfs
	bash tests/posix/fsx.sh $(abspath $(BUILD)/tierfs) $(XFSTESTS) $(FSX_OPS)

demo: deps
	$(MAKE) -j2 $(BUILD)/tierfs $(BUILD)/tierctl
	bash tools/demo.sh $(abspath $(BUILD)/tierfs) $(abspath $(BUILD)/tierctl)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

# Fails (naming the files) when any source differs from .clang-format.
format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.cc' '*.h')

# PREFIX (default /usr/local) and DESTDIR as usual. mount(8) looks for its
# helpers in /sbin alone, so mount.fuse.tierfs goes to MOUNT_HELPER_DIR
# (/sbin) whatever the prefix; the systemd unit to SYSTEMD_UNIT_DIR.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
COMPLETION_DIR ?= $(PREFIX)/share/bash-completion/completions
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
MOUNT_HELPER_DIR ?= /sbin
install: $(BUILD)/tierfs $(BUILD)/tierctl
	install -D -m 0755 $(BUILD)/tierfs $(DESTDIR)$(SBINDIR)/tierfs
	install -D -m 0755 $(BUILD)/tierctl $(DESTDIR)$(BINDIR)/tierctl
	install -D -m 0644 man/tierctl.1 $(DESTDIR)$(MANDIR)/man1/tierctl.1
	install -D -m 0644 man/tierfs.8 $(DESTDIR)$(MANDIR)/man8/tierfs.8
	install -D -m 0644 man/tierfs.policy.5 $(DESTDIR)$(MANDIR)/man5/tierfs.policy.5
	install -D -m 0644 tools/tierctl.bash-completion $(DESTDIR)$(COMPLETION_DIR)/tierctl
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(MOUNT_HELPER_DIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' packaging/tierfs@.service.in > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/tierfs@.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/tierfs@.service
	sed 's|@SBINDIR@|$(SBINDIR)|g' packaging/mount.fuse.tierfs.in > $(DESTDIR)$(MOUNT_HELPER_DIR)/mount.fuse.tierfs
	chmod 0755 $(DESTDIR)$(MOUNT_HELPER_DIR)/mount.fuse.tierfs
	install -D -m 0644 packaging/example.conf $(DESTDIR)$(PREFIX)/share/doc/tierfs/example.conf

clean:
	rm -rf build build-asan build-tsan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
