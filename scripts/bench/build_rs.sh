# shellcheck shell=bash
# Task 9 of scripts/bench.sh, sourced by it (`scripts/bench.sh --only build-rs` runs it alone): the
# compile cost of kiln in a Rust app's build.rs, on examples/axum-app in the repository's debug
# target folder (the development loop): a build with nothing changed, after one CSS edit
# (the build script runs kiln, then the crate is compiled and linked again), and after one edit
# of the app's own Rust code (no build script), for comparison. The example builds a copy of its
# configuration and assets under $WORK (KILN_EXAMPLE_CONFIG), so the edits stay out of the tree.
#
# Uses bench.sh's WORK, RESULT, measure, row and log.

build_rs_tasks() {
  local copy=$WORK/axum-app
  rm -rf "$copy" && mkdir -p "$copy"
  cp -r examples/axum-app/assets examples/axum-app/kiln.toml "$copy/"
  export KILN_EXAMPLE_CONFIG=$copy/kiln.toml
  # What the test suite builds (`cargo test --no-run`, the whole workspace): the example's
  # binary and its test harness are compiled on each change. A `-p kiln-example-axum` build would
  # resolve features apart and compile every codec again for its build script first.
  local build=(cargo test --no-run --locked -q)
  log "building the axum example once (not timed)"
  "${build[@]}"
  measure buildrs.noop "${build[@]}"
  BUILDRS_N=0
  # shellcheck disable=SC2317 # prep is called by measure
  prep() { BUILDRS_N=$((BUILDRS_N + 1)); printf '\n.bench-%s { color: red }\n' "$BUILDRS_N" >> "$copy/assets/css/app.css"; }
  measure buildrs.css "${build[@]}"
  # shellcheck disable=SC2317
  prep() { BUILDRS_N=$((BUILDRS_N + 1)); printf '\n// bench %s\n' "$BUILDRS_N" >> examples/axum-app/src/main.rs; }
  measure buildrs.rs "${build[@]}"
  git checkout -q -- examples/axum-app/src/main.rs
  "${build[@]}"
  unset KILN_EXAMPLE_CONFIG
}

build_rs_rows() {
  row "examples/axum-app, debug build, nothing changed" "cargo + kiln::cargo" "-" buildrs.noop -
  row "examples/axum-app, one CSS edit (build script + crate)" "cargo + kiln::cargo" "-" buildrs.css -
  row "examples/axum-app, one Rust edit (crate only, for comparison)" "cargo" "-" buildrs.rs -
}

build_rs_summary() {
  echo "build.rs: one CSS edit costs $(ratio2 buildrs.css buildrs.rs) of a Rust edit's rebuild" \
       "($(echo "${RESULT[buildrs.css]}" | cut -d' ' -f1) s against $(echo "${RESULT[buildrs.rs]}" | cut -d' ' -f1) s)."
}
