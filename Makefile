# Developer entry points. Everything works from a fresh clone: each target bootstraps what it
# needs first (scripts/bootstrap is quick when nothing is missing).
#
#   make build | test | asan | tsan | demo | bench | clean      BUILD=dir  JOBS=n  CMAKE_ARGS=...
#
# `make bench` (never part of `make test`) turns on SLUICE_BUILD_BENCH in BUILD, builds what
# bench/run_all.py needs and runs it: Sluice against pandas, Dask and its ceilings on 1M rows
# (about 15 minutes on a busy 2-core machine); the table goes to stdout and BUILD/bench/results.md.
#
# CMAKE_ARGS is passed when a build directory is first configured. A SLUICE_THIRD_PARTY set in the
# environment (bootstrap's unpack prefix) is passed on to CMake too.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
CMAKE_ARGS ?=
THIRD_PARTY_ARGS := $(if $(SLUICE_THIRD_PARTY),-DSLUICE_THIRD_PARTY=$(SLUICE_THIRD_PARTY))

ASAN_BUILD := build-asan
TSAN_BUILD := build-tsan
comma := ,

CTEST = ctest --output-on-failure -j $(JOBS) --test-dir

# $(call configure,DIR,ARGS): configure DIR with Ninja unless it is configured already
# (later builds re-run CMake by themselves when CMakeLists change).
configure = test -f $(1)/build.ninja || cmake -S . -B $(1) -G Ninja $(2) \
  $(THIRD_PARTY_ARGS) $(CMAKE_ARGS)

.PHONY: all bootstrap build test asan tsan demo bench clean

all: build

bootstrap:
	scripts/bootstrap

build: bootstrap
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=$(BUILD_TYPE))
	cmake --build $(BUILD) -j $(JOBS)

test: build
	$(CTEST) $(BUILD)

asan: bootstrap
	$(call configure,$(ASAN_BUILD),-DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=address$(comma)undefined)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(CTEST) $(ASAN_BUILD)

# tsan.supp: oneTBB is not TSan-instrumented; see the file for what it hides.
tsan: bootstrap
	$(call configure,$(TSAN_BUILD),-DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=thread)
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tsan.supp" \
	  $(CTEST) $(TSAN_BUILD)

demo: build
	BUILD=$(BUILD) scripts/demo

bench: build
	cmake -S . -B $(BUILD) -DSLUICE_BUILD_BENCH=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target sluice_model_ceiling
	/usr/bin/python3 bench/run_all.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) examples/*/out examples/*/out_*
