#!/usr/bin/env bash
# Fuzzing throughput: executions per second of every libFuzzer target (clang-14,
# ASan+UBSan, one job, from its seed corpus, no plant) over a timed campaign
# run by `msglab fuzz`, against each target's goal (cli/fuzz_campaign.cpp):
# 10,000/s for each wire parser; 1,000/s for each stateful target, the
# scenario document parser and the SLMP unit codec (crypto on every run); 400/s
# for the SLMP session (P-256 key generation and ECDH) and CSMP's calls;
# 200/s, 150/s and 75/s for SP-SimpleChat's frames, server logic and file
# receiver (instrumented JSON several times per frame; files on disk).
set -euo pipefail
cd "$(dirname "$0")/.."
msglab=${1:-build/cli/msglab}
seconds=${FUZZ_BENCH_SECONDS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$msglab" fuzz --time "$seconds" --no-merge --out "$work" --seed 1 >/dev/null 2>"$work/stderr" || {
  echo "fuzz_throughput: msglab fuzz failed:"; tail -20 "$work/stderr"; exit 1; }
/usr/bin/python3 - "$work/summary.json" "$seconds" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
print(f"libFuzzer targets, ASan+UBSan, 1 job, {sys.argv[2]} s each from the seed corpus")
print(f"{'target':16} {'kind':9} {'exec/s':>9} {'target':>8}  {'cov':>5} {'corpus':>6}")
failed = False
for t in summary["targets"]:
    goal = t["goal_exec_per_sec"]
    ok = t["exec_per_sec"] >= goal
    failed |= not ok
    print(f"{t['target']:16} {'stateful' if t['stateful'] else 'parser':9} {t['exec_per_sec']:9,.0f} {goal:8,}  "
          f"{t['coverage']:5} {t['corpus']:6}  {'ok' if ok else 'BELOW TARGET'}")
sys.exit(1 if failed else 0)
PY
