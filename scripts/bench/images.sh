# shellcheck shell=bash
# Task 10 of scripts/bench.sh, sourced by it (`scripts/bench.sh --only images` runs it alone):
# kiln's image pipeline against sharp (libvips, through Node), on the corpus's JPEG photos
# flattened into $JPGSET. Each makes what kiln makes with its defaults and
# `widths = [480, 960, 1600]`: for every photo, each width below its own (never upscaled) and its
# own size, in AVIF, WebP and JPEG (kiln: quality 80 and speed 6 for AVIF and WebP, the JPEG
# itself transcoded losslessly, resized JPEGs at 85; sharp: the same settings mapped onto its
# options, scripts/bench/images-sharp.mjs says how). kiln runs cold (--no-cache), without the
# ThumbHash placeholder (sharp makes none).
#
# The same quality number is not the same quality in two AVIF encoders (ravif's quality 80 is
# rav1e's quantizer 121 of 255; libheif maps its own onto libaom's quantizer by another curve, and
# sharp's 80 scores far better than kiln's), so sharp also runs with its AVIF quality lowered to
# $SHARP_EQ_AVIF_QUALITY, everything else the same: the lowest quality whose own-size AVIFs score
# a mean and a median DSSIM at or below kiln's on this corpus (found by encoding the 24 photos at
# sharp qualities 50 to 70, kiln 84a091e, sharp 0.35.6; the summary prints both tools' scores, so
# a change in either shows). Then every output is scored with DSSIM
# (scripts/bench/images-score.mjs; the `dssim` crate's CLI, installed with cargo).
#
# Uses bench.sh's WORK, OUTS, PEERS, TOOLS, JPGSET, JPG_FILES, KILN, RESULT, measure, row, ratio,
# image_config and log.

SHARP_EQ_AVIF_QUALITY=58

images_tasks() {
  [ -x "$TOOLS/bin/dssim" ] || { log "installing the dssim CLI (cargo install)"; cargo install dssim --version '^3' --locked --quiet --root "$TOOLS"; }
  image_config images "$JPGSET" 'widths = [480, 960, 1600]' 'placeholder = false'
  # shellcheck disable=SC2317 # prep is called by measure
  prep() { set_aside "$OUTS/kiln-images"; }
  measure images.kiln "$KILN" build -q --no-cache --config "$WORK/kiln-images.toml" --out "$OUTS/kiln-images"
  # shellcheck disable=SC2317
  prep() { set_aside "$OUTS/sharp"; }
  measure images.sharp node "$PEERS/images-sharp.mjs" "$JPGSET" "$OUTS/sharp"
  # shellcheck disable=SC2317
  prep() { set_aside "$OUTS/sharp-eq"; }
  measure images.sharp-eq node "$PEERS/images-sharp.mjs" "$JPGSET" "$OUTS/sharp-eq" "$SHARP_EQ_AVIF_QUALITY"
  log "scoring every image with dssim (not timed)"
  node "$PEERS/images-score.mjs" "$JPGSET" "$TOOLS/bin/dssim" kiln="$OUTS/kiln-images" sharp="$OUTS/sharp" \
    "sharp, AVIF quality $SHARP_EQ_AVIF_QUALITY=$OUTS/sharp-eq" > "$WORK/images-score.md"
}

# The rows' bytes are the AVIF and WebP files: the JPEGs differ in kind (kiln's own-size JPEG is
# lossless, sharp's is re-encoded), and the summary's table gives them apart.
images_rows() {
  local task="JPEG photos: AVIF + WebP + JPEG at 3 widths and own size (bytes: AVIF + WebP)"
  row "$task" "kiln (q 80, speed 6; JPEG lossless, hash)" "$JPG_FILES" images.kiln "$OUTS/kiln-images" '*.avif' '*.webp'
  row "$task" "sharp (AVIF q 80 effort 3 10-bit, WebP q 80 effort 4, mozjpeg q 85)" "$JPG_FILES" images.sharp "$OUTS/sharp" '*.avif' '*.webp'
  row "$task" "sharp, AVIF q $SHARP_EQ_AVIF_QUALITY (kiln's AVIF score)" "$JPG_FILES" images.sharp-eq "$OUTS/sharp-eq" '*.avif' '*.webp'
}

# score TOOL FORMAT SIZE COLUMN: a cell of the score table (4 files, 5 bytes, 6 mean, 7 median).
score() {
  awk -F' [|] ' -v t="$1" -v f="$2" -v s="$3" -v c="$4" '$1 == "| " t && $2 == f && $3 == s { sub(/ [|]$/, "", $c); print $c }' "$WORK/images-score.md"
}

# cpu_of KEY: the CPU seconds of a measured task.
cpu_of() { echo "${RESULT[$1]}" | awk '{ printf "%.1f", $2 }'; }

images_summary() {
  local eq="sharp, AVIF quality $SHARP_EQ_AVIF_QUALITY"
  echo "Images against sharp: kiln's wall-time ratio is $(ratio images.kiln images.sharp) of sharp's speed at the same settings" \
       "and $(ratio images.kiln images.sharp-eq) at kiln's AVIF score (above 1x is faster); CPU seconds: kiln $(cpu_of images.kiln)," \
       "sharp $(cpu_of images.sharp), sharp at AVIF quality $SHARP_EQ_AVIF_QUALITY $(cpu_of images.sharp-eq)." \
       "Own-size AVIF: kiln $(score kiln avif 'own size' 5) bytes at DSSIM $(score kiln avif 'own size' 6) (median $(score kiln avif 'own size' 7))," \
       "sharp at quality 80 $(score sharp avif 'own size' 5) bytes at $(score sharp avif 'own size' 6) ($(score sharp avif 'own size' 7))," \
       "at quality $SHARP_EQ_AVIF_QUALITY $(score "$eq" avif 'own size' 5) bytes at $(score "$eq" avif 'own size' 6) ($(score "$eq" avif 'own size' 7))." \
       "Bytes and DSSIM (against the source, lower is better) of every output:"
  echo
  cat "$WORK/images-score.md"
}
