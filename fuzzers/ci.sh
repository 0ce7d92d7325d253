#!/usr/bin/env bash
# CI fuzzing: builds the libFuzzer targets (clang-14, ASan+UBSan), runs each
# for 10 seconds from its seed corpus (any crash fails), then shows that a
# short campaign on the stateful SecMsg target finds the memory-safety plant
# secmsg.recv-overflow within 60 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
make fuzzers >/dev/null
bin=build-fuzz/fuzzers
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for t in secmsg_codec secmsg_session fernet keylog pcap; do
  mkdir -p "$work/$t"
  # The memory-safety plant is kept off here (it is the campaign's to find),
  # so any crash in these runs is a real finding.
  if MSGLAB_FUZZ_NO_MEMORY_PLANT=1 "$bin/${t}_fuzzer" -max_total_time=10 -seed=1 -print_final_stats=1 \
       -dict=fuzzers/dicts/$t.dict -artifact_prefix="$work/$t-" "$work/$t" "fuzzers/corpus/$t" \
       > "$work/$t.log" 2>&1; then
    runs=$(grep -m1 '^stat::number_of_executed_units' "$work/$t.log" | awk '{print $2}')
    echo "fuzz: $t: 10 s, $runs runs, no crash"
  else
    echo "fuzz: $t: CRASH"; tail -40 "$work/$t.log"; status=1
  fi
done
start=$(date +%s)
mkdir -p "$work/campaign"
if "$bin/secmsg_session_fuzzer" -max_total_time=60 -seed=1 -dict=fuzzers/dicts/secmsg_session.dict \
     -artifact_prefix="$work/campaign-" "$work/campaign" fuzzers/corpus/secmsg_session > "$work/campaign.log" 2>&1; then
  echo "fuzz: campaign did NOT find secmsg.recv-overflow within 60 s"; status=1
elif grep -q 'heap-buffer-overflow' "$work/campaign.log" && \
     grep -q 'in msglab::secmsg::Session::handle_packet' "$work/campaign.log"; then
  echo "fuzz: campaign found secmsg.recv-overflow (heap-buffer-overflow in Session::handle_packet) in $(( $(date +%s) - start )) s"
else
  echo "fuzz: campaign crashed, but not on the plant:"; tail -40 "$work/campaign.log"; status=1
fi
[ $status -eq 0 ] && echo "fuzz: 6 passed, 0 failed" || echo "fuzz: failed"
exit $status
