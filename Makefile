# msglab: a thin wrapper over CMake. `make check` is the test command and
# `make audit` the main one; both install missing Debian packages first.

SANITIZE ?= 0
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

ifeq ($(SANITIZE),1)
BUILD ?= build-asan
CMAKE_ARGS += -DMSGLAB_SANITIZE=ON -DMSGLAB_BUILD_BENCH=OFF -DMSGLAB_BUILD_DISSECTOR=OFF
else
BUILD ?= build
endif

GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")
MSGLAB := $(BUILD)/cli/msglab

.PHONY: all deps configure build check bench audit install-plugin fuzzers clean help

all: build

help:
	@echo "make check      install deps, build, run every test (SANITIZE=1: under ASan+UBSan)"
	@echo "make audit      install deps, build, run the audit"
	@echo "make bench      install deps, build, run every benchmark and print its figures"
	@echo "make install-plugin  put msglab.so in your personal Wireshark plugin folder"
	@echo "make deps       install the Debian packages msglab needs (only what is missing)"
	@echo "make build      configure and build into $(BUILD)/"
	@echo "make clean      remove the build folders"

deps:
	@tools/deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G "$(GENERATOR)" -DMSGLAB_WERROR=ON $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

check: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	@set -e; for b in $(BUILD)/bench/bench_*; do \
	  [ -x "$$b" ] || continue; echo "== $$(basename $$b)"; "$$b"; echo; done
	@echo "== fuzz_throughput"; bench/fuzz_throughput.sh $(MSGLAB)

audit: build
	@$(MSGLAB) audit

# libFuzzer binaries (clang-14, ASan+UBSan) in build-fuzz/fuzzers/<target>_fuzzer.
fuzzers: deps
	@cmake -S . -B build-fuzz -G "$(GENERATOR)" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 \
	  -DMSGLAB_FUZZ=ON -DMSGLAB_BUILD_TESTS=OFF -DMSGLAB_BUILD_BENCH=OFF -DMSGLAB_BUILD_DISSECTOR=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target secmsg_codec_fuzzer secmsg_session_fuzzer slmp_codec_fuzzer slmp_session_fuzzer csmp_http_fuzzer csmp_ws_fuzzer csmp_calls_fuzzer fernet_fuzzer keylog_fuzzer pcap_fuzzer scenario_fuzzer

install-plugin: build
	@cmake --install $(BUILD) --component plugin
	@echo "installed: $$HOME/.local/lib/wireshark/plugins/4.0/epan/msglab.so (Wireshark and tshark as this user load it;"
	@echo "as root they ignore personal plugins: use 'msglab wireshark' / 'msglab tshark')"

clean:
	rm -rf build build-asan build-fuzz
