#!/usr/bin/env bash
# CI fuzzing: every libFuzzer target (clang-14, ASan+UBSan) for 4 seconds
# from its seed corpus through `msglab fuzz`, with no plant switched on: any
# crash fails. (The campaigns that must find the memory-safety plants within
# 60 s are ctests: "fuzz: msglab fuzz builds its targets, ..." for
# secmsg.recv-overflow, "fuzz: msglab fuzz runs the SLMP targets clean, ..."
# for slmp.unit-overflow.)
set -euo pipefail
cd "$(dirname "$0")/.."
msglab=${MSGLAB:-build/cli/msglab}
[ -x "$msglab" ] || { echo "fuzz: $msglab is missing; run 'make build' first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if "$msglab" fuzz --time 4 --no-merge --out "$work" </dev/null; then
  echo "fuzz: every target ran 4 s under ASan+UBSan with no crash"
else
  status=$?
  echo "fuzz: FAILED (exit status $status)"
  cat "$work/findings.jsonl" 2>/dev/null || true
  exit 1
fi
