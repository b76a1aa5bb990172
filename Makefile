# Tessera: the two commands of the README, plus bench and developer targets.
#   make demo   installs what is missing, builds, runs the main job (all-MiniLM-L6-v2 on every backend, docs/demo.md)
#   make test   the same set-up, then every test (normal, ASan+UBSan, fuzzing)
#   make bench  the same set-up, then every benchmark (build/bench.json, build/bench.md, build/bench.png,
#               build/python_overhead.json: a tiny kernel called from Python against the same launch from C)
#   make examples  the example kernel set on every backend, each result checked
BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_FUZZ ?= build-fuzz
JOBS       ?= 2
FUZZ_SECONDS ?= 60

.PHONY: all setup build demo examples test test-quick test-sanitize fuzz bench clean

all: build

setup:
	@tools/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/tessera demo

examples: build
	$(BUILD)/tessera examples

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	$(MAKE) --no-print-directory test-sanitize
	$(MAKE) --no-print-directory fuzz

# The tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
test-sanitize: setup
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DTS_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_SAN) -j$(JOBS)
	cd $(BUILD_SAN) && TESSERA_TEST_BACKENDS=ref ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

# Every fuzz target (parsers of untrusted input) for a bounded time, with ASan+UBSan.
fuzz: setup
	@CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DTS_SANITIZE=ON -DTS_FUZZ=ON -DTS_TESTS=OFF >/dev/null
	@cmake --build $(BUILD_FUZZ) -j$(JOBS)
	@tools/run-fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

bench: build
	$(BUILD)/tessera bench --json $(BUILD)/bench.json --markdown $(BUILD)/bench.md
	python3 tools/bench_chart.py $(BUILD)/bench.json $(BUILD)/bench.png
	python3 bench/python_overhead.py --build $(BUILD) --json $(BUILD)/python_overhead.json --check

test-quick: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
