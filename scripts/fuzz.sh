#!/usr/bin/env bash
# Fuzzes kiln's front doors for a time budget: tests/fuzz.rs (CSS and JS reference collection and
# substitution, image headers and decoders) in rounds of CASES inputs per target, each round with
# fresh random seeds. Not part of the test command (which runs a few cases per target); run it
# before a release or after touching a parser. A failing input is saved by proptest in
# tests/fuzz.proptest-regressions: commit it with the fix, it is replayed on every test run.
#
#   scripts/fuzz.sh [--seconds N] [--cases N]     # defaults: 600 s, 2000 cases
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=600
CASES=2000
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) BUDGET=$2; shift 2;;
    --cases) CASES=$2; shift 2;;
    *) echo "usage: scripts/fuzz.sh [--seconds N] [--cases N]" >&2; exit 2;;
  esac
done
cargo test --locked -q --test fuzz --no-run
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
rounds=0
while [ $(( $(date +%s) - start )) -lt "$BUDGET" ]; do
  if ! KILN_FUZZ_CASES=$CASES cargo test --locked -q --test fuzz >"$log" 2>&1; then
    cat "$log"
    echo "fuzz: a failure after $rounds rounds; the input is in tests/fuzz.proptest-regressions" >&2
    exit 1
  fi
  rounds=$((rounds + 1))
done
elapsed=$(( $(date +%s) - start ))
echo "fuzz: $((rounds * CASES * 3)) inputs (3 targets x $CASES cases x $rounds rounds) in ${elapsed} s, no failure"
