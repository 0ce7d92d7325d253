#!/usr/bin/env bash
# Regenerates fuzzers/corpus/ from real captures (the original programs' in
# ../shared/captures/originals when present) and msglab's own sessions.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
cmake --build "$build" --target make_corpus >/dev/null
captures=()
for c in ../shared/captures/originals/secmsg.pcap ../shared/captures/originals/slmp.pcap \
         ../shared/captures/originals/spchat.pcap ../shared/captures/originals/socp.pcap; do [ -f "$c" ] && captures+=("$c"); done
rm -rf fuzzers/corpus
"$build/fuzzers/make_corpus" fuzzers/corpus "${captures[@]}"
# The scenario parser's seeds are the scenario library, named by content.
mkdir -p fuzzers/corpus/scenario
for f in scenarios/*/*.yaml; do cp "$f" "fuzzers/corpus/scenario/$(sha256sum "$f" | cut -c1-16)"; done
find fuzzers/corpus -type f | sed 's|/[^/]*$||' | sort | uniq -c
