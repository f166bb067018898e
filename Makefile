# Thin wrapper over CMake so the README's two commands are all a newcomer needs.
#   make run    install missing deps, build Release, start an embedded single-node Mafalda
#   make test   install missing deps, build Debug (-Werror) and run every test, then the same
#               with ASan+UBSan, then check that the Release build (what `make run` uses,
#               where -O2 enables more warnings) compiles
#   make bench  benchmarks (figures printed, nothing asserted)
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
ARGS ?=
# The demo page (built by CMake's mf_web target) served under /app/; a --web-dir in ARGS
# wins (the last flag counts), --web-dir= turns it off.
WEB_DIR ?= $(CURDIR)/node/web
CMAKE_FLAGS ?=

.PHONY: all deps release debug asan run test test-debug test-asan bench fuzz clean

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

test-debug: debug
	cd $(BUILD_DIR)/debug && ctest --output-on-failure -j $(JOBS)

# detect_leaks stays on: a leak fails the test.
test-asan: asan
	cd $(BUILD_DIR)/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

test: test-debug test-asan release

# One figure per line: a figure whose setup fails stops make with its own message.
BENCH_BIN = $(BUILD_DIR)/release/tests/bench/mafalda-bench
bench: release
	$(BENCH_BIN) controller
	$(BENCH_BIN) pipes-count
	$(BENCH_BIN) pipes-cpu

fuzz: deps
	cmake -S . -B $(BUILD_DIR)/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMF_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/fuzz -j $(JOBS)

clean:
	rm -rf $(BUILD_DIR)
