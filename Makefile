# The two commands: `make run` and `make test`. Everything else is a convenience.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz

.PHONY: all build run test test-fast test-asan test-fuzz fuzz deps deps-test deps-lab install clean

# $(call configure,DIR,ARGS): cmake's configure step, quiet when it works; when it fails, its
# whole output (which names what is missing) and no half-made cache left to trip the next make.
configure = mkdir -p $(1) && { cmake -S . -B $(1) $(2) >$(1)/configure.log 2>&1 || \
	{ cat $(1)/configure.log >&2; rm -f $(1)/CMakeCache.txt; exit 1; }; }

all: build

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test
deps-lab:
	@scripts/deps.sh all

$(BUILD)/CMakeCache.txt:
	@$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVT_WERROR=ON)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Measure the default targets, upload them to a local embedded collector, show the summary.
run: deps build
	@scripts/run.sh $(BUILD) $(ARGS)

# Whole suite: normal build (warnings are errors), then again under ASan+UBSan.
# Lab tests (network namespaces) run when root, and skip with a message otherwise.
test: deps-lab build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE lab
	cd $(BUILD) && ctest --output-on-failure -L lab
	$(MAKE) test-asan
	$(MAKE) test-fuzz

test-fast: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE lab

test-asan: deps-test
	@$(call configure,$(ASAN_BUILD),-DCMAKE_BUILD_TYPE=Debug -DVT_WERROR=ON -DVT_SANITIZE=ON)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) -LE lab

# libFuzzer (clang, ASan+UBSan) on every parser of outside input (tests/fuzz/): the regression
# inputs replayed, then FUZZ_TEST_SECONDS (5) each in parallel. `make fuzz`: FUZZ_SECONDS (60)
# each, one after another.
FUZZ_TEST_SECONDS ?= 5
FUZZ_SECONDS ?= 60
$(FUZZ_BUILD)/CMakeCache.txt:
	@export CC=clang && $(call configure,$(FUZZ_BUILD),-DCMAKE_BUILD_TYPE=Debug -DVT_FUZZ=ON -DVT_WERROR=ON)

test-fuzz: deps-test $(FUZZ_BUILD)/CMakeCache.txt
	cmake -S . -B $(FUZZ_BUILD) -DVT_FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	cd $(FUZZ_BUILD) && ctest --output-on-failure -j $(JOBS) -L fuzz

fuzz: deps-test $(FUZZ_BUILD)/CMakeCache.txt
	cmake -S . -B $(FUZZ_BUILD) -DVT_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz

# `make install [DESTDIR=stage] [PREFIX=/usr]`: DESTDIR stages (packaging); PREFIX configures the
# build for that prefix first (the systemd units' ExecStart and the collector's dashboard path
# are set at configure time), rebuilds, then installs.
install: build
	$(if $(PREFIX),@$(call configure,$(BUILD),-DCMAKE_INSTALL_PREFIX=$(PREFIX)) && cmake --build $(BUILD) -j $(JOBS))
	DESTDIR="$(if $(DESTDIR),$(abspath $(DESTDIR)))" cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
