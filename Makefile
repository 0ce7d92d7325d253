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

FUZZ_TARGETS := secmsg_codec secmsg_session slmp_codec slmp_session csmp_http csmp_ws csmp_calls spchat_frame spchat_files \
  spchat_app socp_envelope socp_payload socp_app signal_ratchet signal_session signal_eio fernet keylog pcap scenario
# What `make check-sanitize` builds and runs under ASan and UBSan: the
# protocols' codecs, sessions, servers and clients, replay, and every seed
# corpus (the scenario, hunt, report and command tests run in `make check`).
SANITIZE_TARGETS := msglab core_tests secmsg_tests secmsg_overflow_probe slmp_tests csmp_tests csmp_wire_tests \
  spchat_tests signal_crypto_tests signal_stream_tests signal_tests replay_tests $(addsuffix _replay,$(FUZZ_TARGETS))
SANITIZE_LABELS := core|secmsg|slmp|csmp|spchat|signal|replay|fuzz

.PHONY: all deps configure build check check-sanitize bench audit install-plugin fuzzers clean help

all: build

help:
	@echo "make check      install deps, build, run every test (SANITIZE=1: under ASan+UBSan)"
	@echo "make check-sanitize  the protocol, replay and fuzz-corpus tests under ASan+UBSan (what CI adds)"
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

check-sanitize: deps
	@cmake -S . -B build-asan -G "$(GENERATOR)" -DMSGLAB_WERROR=ON -DMSGLAB_SANITIZE=ON -DMSGLAB_BUILD_BENCH=OFF \
	  -DMSGLAB_BUILD_DISSECTOR=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS) --target $(SANITIZE_TARGETS)
	@cd build-asan && ctest --output-on-failure -j $(JOBS) -L '$(SANITIZE_LABELS)' $(CTEST_ARGS)

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
	@cmake --build build-fuzz -j $(JOBS) --target $(addsuffix _fuzzer,$(FUZZ_TARGETS))

install-plugin: build
	@cmake --install $(BUILD) --component plugin
	@echo "installed: $$HOME/.local/lib/wireshark/plugins/4.0/epan/msglab.so (Wireshark and tshark as this user load it;"
	@echo "as root they ignore personal plugins: use 'msglab wireshark' / 'msglab tshark')"

clean:
	rm -rf build build-asan build-fuzz
