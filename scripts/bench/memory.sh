#!/usr/bin/env bash
# Peak memory of a cold `kiln build` of the benchmark corpus (docs/benchmarks.md#memory): once with
# the default settings and once with `[images] max_memory_mb = 256`, each with fresh output and
# cache folders, measured with /usr/bin/time -v. Prints a Markdown table.
#
#   scripts/bench/memory.sh            # kiln built in release mode in $CARGO_TARGET_DIR (default target/)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=${KILN_BENCH_DIR:-/tmp/kiln-bench}
CORPUS=$WORK/corpus
[ -d "$CORPUS" ] || "${KILN_CORPUS_SCRIPT:-$ROOT/../shared/corpus/make-corpus.sh}" "$CORPUS"
[ -x /usr/bin/time ] || { source scripts/lib/deps.sh; apt_install time; }
cargo build --release --locked -q -p kiln --bin kiln
KILN=${CARGO_TARGET_DIR:-$ROOT/target}/release/kiln

run() { # run NAME EXTRA-TOML
  local dir=$WORK/memory-$1
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'src = "%s"\nout = "%s/out"\n%b\n[cache]\ndir = "%s/cache"\n' "$CORPUS" "$dir" "$2" "$dir" > "$dir/kiln.toml"
  /usr/bin/time -v "$KILN" build -q --config "$dir/kiln.toml" 2> "$dir/time.txt"
  local rss wall
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.txt")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.txt")
  printf '| %s | %s KiB (%s MiB) | %s |\n' "$1" "$rss" "$((rss / 1024))" "$wall"
  rm -rf "$dir/out" "$dir/cache"
}

echo "| settings | peak RSS | wall |"
echo "|---|---|---|"
run defaults ""
run max_memory_mb=256 '[images]\nmax_memory_mb = 256'
