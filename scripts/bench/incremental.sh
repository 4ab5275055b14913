# shellcheck shell=bash
# Task 6 of scripts/bench.sh, sourced by it (`scripts/bench.sh --only incremental` runs it alone):
# the whole build cold, then incremental builds with the persistent cache (nothing changed, one
# CSS file edited, one image edited), on a copy of the corpus that the edits go to. Beside them,
# the floors the incremental builds are held against, measured in the same run:
# - reading every source file once (`find -exec cat`), the least any build that looks at the
#   files must do;
# - the edited CSS file's own work: a cold build (no cache) of a folder holding only that file
#   and its map, the same settings otherwise, so "one CSS edit" can be stated as that plus a
#   multiple of the read floor.
#
# Uses bench.sh's WORK, CORPUS, OUTS, KILN, RESULT, measure, row, ratio2 and log.

INCR_CSS=vendor/bootstrap/css/bootstrap.css

incremental_tasks() {
  EDIT=$WORK/corpus-edit
  rm -rf "$EDIT" && cp -a "$CORPUS" "$EDIT"
  cat > "$WORK/kiln-all.toml" <<TOML
src = "$EDIT"
[cache]
dir = "$WORK/cache"
TOML
  # shellcheck disable=SC2317 # prep is called by measure
  prep() { set_aside "$OUTS/kiln-all" "$WORK/cache"; }
  measure all.kiln "$KILN" build -q --config "$WORK/kiln-all.toml" --out "$OUTS/kiln-all"
  measure floor.read sh -c "find '$EDIT' -type f -exec cat {} + >/dev/null"
  measure noop.kiln "$KILN" build -q --config "$WORK/kiln-all.toml" --out "$OUTS/kiln-all"
  EDIT_N=0
  # shellcheck disable=SC2317
  prep() { EDIT_N=$((EDIT_N + 1)); printf '\n.kiln-bench-%s { color: red }\n' "$EDIT_N" >> "$EDIT/$INCR_CSS"; }
  measure css-edit.kiln "$KILN" build -q --config "$WORK/kiln-all.toml" --out "$OUTS/kiln-all"
  # The edited file alone, cold: what the CSS edit cannot avoid (minify, map, hash, .br and .gz).
  local alone=$WORK/css-alone
  rm -rf "$alone" && mkdir -p "$alone/$(dirname "$INCR_CSS")"
  cp "$EDIT/$INCR_CSS" "$alone/$INCR_CSS"
  [ ! -f "$CORPUS/$INCR_CSS.map" ] || cp "$CORPUS/$INCR_CSS.map" "$alone/$INCR_CSS.map"
  printf 'src = "%s"\nstrict = false\n' "$alone" > "$WORK/kiln-css-alone.toml"
  # shellcheck disable=SC2317
  prep() { set_aside "$OUTS/kiln-css-alone"; }
  measure css-alone.kiln "$KILN" build -q --no-cache --config "$WORK/kiln-css-alone.toml" --out "$OUTS/kiln-css-alone"
  IMAGE=$(find "$EDIT/img/photos" -name '*.jpg' | sort | head -1)
  # shellcheck disable=SC2317
  prep() { printf 'kiln-bench' >> "$IMAGE"; }
  measure image-edit.kiln "$KILN" build -q --config "$WORK/kiln-all.toml" --out "$OUTS/kiln-all"
}

wall() { echo "${RESULT[$1]}" | cut -d' ' -f1; }
# times_floor KEY [MINUS_KEY]: (KEY - MINUS_KEY) / the read floor, as "N.NNx".
times_floor() {
  awk -v a="$(wall "$1")" -v m="$([ -n "${2:-}" ] && wall "$2" || echo 0)" -v f="$(wall floor.read)" \
    'BEGIN { printf "%.2fx", (a - m) / f }'
}

incremental_rows() {
  row "whole build, cold" kiln "$TOTAL_FILES" all.kiln "$OUTS/kiln-all" "${ALLFILES[@]}"
  row "read every source file once (the floor)" "find -exec cat" "$TOTAL_FILES" floor.read -
  row "rebuild, nothing changed ($(ratio2 noop.kiln all.kiln) of cold, $(times_floor noop.kiln) the floor)" kiln "$TOTAL_FILES" noop.kiln -
  row "rebuild, one CSS file edited ($(ratio2 css-edit.kiln all.kiln) of cold)" kiln "$TOTAL_FILES" css-edit.kiln -
  row "that CSS file alone, cold (its own work)" kiln 1 css-alone.kiln -
  row "rebuild, one image edited ($(ratio2 image-edit.kiln all.kiln) of cold)" kiln "$TOTAL_FILES" image-edit.kiln -
}

incremental_summary() {
  echo "Incremental builds against the floor of reading every source file once ($(wall floor.read) s):" \
       "nothing changed $(times_floor noop.kiln) the floor (target at most 2x);" \
       "one CSS edit ($INCR_CSS) costs its own work alone ($(wall css-alone.kiln) s, built cold by itself)" \
       "plus $(times_floor css-edit.kiln css-alone.kiln) the floor (target at most 3x)."
}
