# Thin wrapper over CMake so the README's two commands are all a newcomer needs.
#   make run    install missing deps, build Release, start an embedded single-node Mafalda
#   make test   install missing deps, build Debug (-Werror) and run every test, then the same
#               with ASan+UBSan, then check that the Release build (what `make run` uses,
#               where -O2 enables more warnings) compiles
#   make bench  benchmarks (figures printed, nothing asserted)
#   make fuzz   clang + libFuzzer build, every fuzz target for FUZZ_SECONDS (default 60) each
#   make coverage  gcov build, ctest (no browser/sdk/bench), gcovr HTML + line/branch summary
#               of node/ controller/ common/, fails under COV_MIN_LINES / COV_MIN_BRANCHES
#   make tsan   ThreadSanitizer build, unit + integration tests (tests/tsan.supp: third-party only)
#   make chaos  long fault-injection runs (ctest label chaos; make test leaves them out)
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
ARGS ?=
# The demo page (built by CMake's mf_web target) served under /app/; a --web-dir in ARGS
# wins (the last flag counts), --web-dir= turns it off.
WEB_DIR ?= $(CURDIR)/node/web
CMAKE_FLAGS ?=

.PHONY: all deps release debug asan run test test-debug test-asan bench fuzz coverage tsan chaos clean

all: debug

deps:
	@deploy/install-deps.sh

release: deps
	cmake -S . -B $(BUILD_DIR)/release -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/release -j $(JOBS)

debug: deps
	cmake -S . -B $(BUILD_DIR)/debug -DCMAKE_BUILD_TYPE=Debug -DMF_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/debug -j $(JOBS)

asan: deps
	cmake -S . -B $(BUILD_DIR)/asan -DCMAKE_BUILD_TYPE=Debug -DMF_WERROR=ON -DMF_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/asan -j $(JOBS)

run: release
	exec $(BUILD_DIR)/release/node/mafalda-node --web-dir $(WEB_DIR) $(ARGS)

# The long fault-injection runs (label chaos) belong to `make chaos`.
test-debug: debug
	cd $(BUILD_DIR)/debug && ctest -LE chaos --output-on-failure -j $(JOBS)

# detect_leaks stays on: a leak fails the test.
test-asan: asan
	cd $(BUILD_DIR)/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -LE chaos --output-on-failure -j $(JOBS)

test: test-debug test-asan release

# One figure per line: a figure whose setup fails stops make with its own message.
BENCH_BIN = $(BUILD_DIR)/release/tests/bench/mafalda-bench
bench: release
	$(BENCH_BIN) controller
	$(BENCH_BIN) pipes-count
	$(BENCH_BIN) pipes-cpu
	$(BENCH_BIN) bound
	$(BENCH_BIN) fanout --node $(BUILD_DIR)/release/node/mafalda-node --search
	$(BENCH_BIN) room --node $(BUILD_DIR)/release/node/mafalda-node --subscribers 10
	$(BENCH_BIN) fanout --node $(BUILD_DIR)/release/node/mafalda-node --sfu both --subscribers 20 --search --max-subscribers 320 \
	    --plot $(BUILD_DIR)/bench-fanout.png
	$(BENCH_BIN) pipe --node $(BUILD_DIR)/release/node/mafalda-node
	$(BENCH_BIN) churn --node $(BUILD_DIR)/release/node/mafalda-node

# clang + libFuzzer build of the fuzz targets only (fuzz_all), then each target runs for
# FUZZ_SECONDS on a scratch copy of its seeds, JOBS at a time; crash inputs land in
# $(BUILD_DIR)/fuzz/crashes/ and fail the run (tests/fuzz/run_fuzz.sh).
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake -S . -B $(BUILD_DIR)/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMF_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/fuzz -j $(JOBS) --target fuzz_all
	tests/fuzz/run_fuzz.sh $(BUILD_DIR)/fuzz $(FUZZ_SECONDS) $(JOBS)

# Thresholds sit just below the last measured figures (docs/reliability.md); raise them as
# coverage grows, never lower them to let a change in.
COV_MIN_LINES ?= 93
COV_MIN_BRANCHES ?= 79
COV_DIR = $(BUILD_DIR)/coverage
# Regexes on paths relative to the repo root: generated protobuf code and tests are left out.
COV_FILTERS = --filter 'node/' --filter 'controller/' --filter 'common/'
coverage: deps
	cmake -S . -B $(COV_DIR) -DCMAKE_BUILD_TYPE=Debug -DMF_WERROR=ON -DMF_COVERAGE=ON $(CMAKE_FLAGS)
	cmake --build $(COV_DIR) -j $(JOBS)
	@# Counters from an earlier run would otherwise be summed into this one.
	find $(COV_DIR) -name '*.gcda' -delete
	cd $(COV_DIR) && ctest -LE 'browser|sdk|bench|chaos' --output-on-failure -j $(JOBS)
	rm -rf $(COV_DIR)/html && mkdir -p $(COV_DIR)/html
	@# gcov can print a negative branch count ("taken -1") when processes killed by the
	@# tests (kill -9, SIGKILL deadlines) left a counter file half-merged: skip such lines.
	@# No -j: gcovr 5.2's worker threads hang when one of them raises.
	gcovr -r . $(COV_FILTERS) --exclude-unreachable-branches --gcov-ignore-parse-errors \
	  --json $(COV_DIR)/coverage.json --html-details $(COV_DIR)/html/index.html $(COV_DIR)
	@for d in node controller common; do \
	  echo "coverage $$d/:"; \
	  gcovr -r . -a $(COV_DIR)/coverage.json --filter "$$d/" --print-summary -o /dev/null | grep -v '^functions'; \
	done
	@echo "coverage total (node/ controller/ common/), report in $(COV_DIR)/html/index.html:"
	gcovr -r . -a $(COV_DIR)/coverage.json $(COV_FILTERS) --print-summary -o /dev/null \
	  --fail-under-line $(COV_MIN_LINES) --fail-under-branch $(COV_MIN_BRANCHES)

# Every unit test, not only the threaded ones (rings, mailbox, workers, pipe hub, controller
# RPC/placement racers), so a test that starts threads later is covered without editing this
# list, and the integration tests (their child nodes and controllers inherit TSAN_OPTIONS: a
# report makes one exit 66 and its test fail) except those whose deadlines do not hold at
# TSan's 5-15x slowdown (TSAN_EXCLUDE: cluster timing targets, the chaos tests' detection
# and answer deadlines) and the chaos label. tests/tsan.supp silences only third-party code
# (libnng, not instrumented; jansson's refcount check), with reasons.
TSAN_DIR = $(BUILD_DIR)/tsan
TSAN_EXCLUDE ?= ^(ctl_cluster|local_cluster|chaos_loss|chaos_leader_api)$$
tsan: deps
	cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DMF_WERROR=ON -DMF_TSAN=ON $(CMAKE_FLAGS)
	cmake --build $(TSAN_DIR) -j $(JOBS)
	cd $(TSAN_DIR) && TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp:halt_on_error=1:second_deadlock_stack=1 \
	  ctest -L 'unit|integration' -LE chaos -E '$(TSAN_EXCLUDE)' --output-on-failure -j $(JOBS)

# Long fault-injection runs (ctest label chaos): 30% gossip/RPC loss through a test proxy
# for 60 s, kill -9 of the controller leader under 30 s of API load, and the churn run.
# Debug build (-Werror) in build/chaos; docs/reliability.md has the last figures.
CHAOS_DIR = $(BUILD_DIR)/chaos
chaos: deps
	cmake -S . -B $(CHAOS_DIR) -DCMAKE_BUILD_TYPE=Debug -DMF_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(CHAOS_DIR) -j $(JOBS)
	cd $(CHAOS_DIR) && ctest -L chaos --output-on-failure

clean:
	rm -rf $(BUILD_DIR)
