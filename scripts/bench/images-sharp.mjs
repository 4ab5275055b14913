// images-sharp.mjs SRC OUT [AVIF_QUALITY]: the peer of kiln's image pipeline (scripts/bench.sh,
// `images` rows), with sharp (libvips): for each JPEG in SRC, what kiln writes for it with
// `[images] widths = [480, 960, 1600]` and its defaults, under kiln's logical names in OUT:
// `photo-480w.jpg`, `photo-480w.avif`, `photo-480w.webp`, ... for each width below the photo's
// own (never upscaled), and `photo.jpg`, `photo.avif`, `photo.webp` at its own size.
//
// Settings, mapped from kiln's defaults to sharp's options as closely as the two allow:
// - AVIF: kiln `quality = 80`, `speed = 6` is ravif/rav1e at quality 80 (rav1e quantizer 121 of
//   255, ravif's own curve), speed preset 6 (of 0-10), 4:4:4 chroma, 10-bit, tuned
//   psychovisually. Here: libaom through libheif, `quality` 80 by default (libheif maps it to
//   libaom's quantizer with its own curve: the same number is not the same quality, which is what
//   the dssim scores are for; the optional third argument sets another), `effort: 3` (libvips
//   passes 9 - effort to libaom as cpu-used: 6, the same number on libaom's own 0-9 speed scale;
//   sharp's default is effort 4, cpu-used 5), `chromaSubsampling: '4:4:4'` (sharp's default, as
//   kiln) and `bitdepth: 10` (as kiln; sharp's default is 8). sharp's `tune` stays at its default.
// - WebP: kiln `quality = 80`, `speed = 6` is libwebp at quality 80, method 10 - 6 = 4, the
//   library's other defaults. Here: libwebp at `quality: 80`, `effort: 4` (libwebp's method, and
//   sharp's default), sharp's other defaults (no smart subsampling, the default preset): the same
//   encoder at the same settings (libwebp 1.6 here, 1.3 in kiln's libwebp-sys).
// - JPEG at the resized widths: kiln encodes them with mozjpeg at `jpeg_quality`, or 85 when that
//   is unset (its default), with mozjpeg's defaults: progressive, optimised Huffman tables,
//   trellis quantisation, its default quantisation tables, 4:2:0. Here: `quality: 85,
//   mozjpeg: true` (sharp's switch for those same mozjpeg defaults), 4:2:0 (sharp's default).
// - JPEG at full size: kiln transcodes the photo's coefficients losslessly (no quality loss,
//   metadata but the colour profile and EXIF orientation dropped). sharp cannot; a sharp
//   pipeline (eleventy-img's, with "jpeg" among its formats) re-encodes it, so it is re-encoded
//   here as the resized ones are, at quality 85 with mozjpeg. That file is lossy here and exact in
//   kiln, so its bytes are reported apart.
// - Both apply the EXIF orientation first (`autoOrient()`), resize with Lanczos3 (sharp's default
//   kernel; kiln uses fast_image_resize's Lanczos3; sharp also shrinks large JPEGs while decoding,
//   its default), convert a photo with another colour profile to sRGB and strip metadata (sharp's
//   default; kiln's lossless own-size JPEG keeps the source's sRGB profile, 3 KB in 3 photos).
//
// Parallelism as sharp runs by default: every output of every photo is queued at once, as
// eleventy-img does (it runs 10 photos at a time, each photo's outputs all together), and
// libuv's thread pool (4 threads by default) runs the pipelines; libvips uses its default
// concurrency within each (1 on glibc Linux without jemalloc, sharp's choice), and libaom its own
// threads.
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

const [src, out, avifQuality = '80'] = process.argv.slice(2);
const WIDTHS = [480, 960, 1600];
const FILES_AT_ONCE = 10; // eleventy-img's default concurrency
const AVIF = { quality: Number(avifQuality), effort: 3, chromaSubsampling: '4:4:4', bitdepth: 10 };
const WEBP = { quality: 80, effort: 4 };
const JPEG = { quality: 85, mozjpeg: true };

fs.mkdirSync(out, { recursive: true });
const files = fs.readdirSync(src).filter((f) => /\.jpe?g$/i.test(f)).sort();

async function photo(name) {
  const input = fs.readFileSync(path.join(src, name));
  const stem = name.replace(/\.[^.]+$/, '');
  const ext = path.extname(name).slice(1);
  const meta = await sharp(input).metadata();
  // The upright size (sharp >= 0.34 reports it for EXIF orientations 5-8, which swap the sides).
  const own = meta.autoOrient ? meta.autoOrient.width : meta.width;
  const sizes = [...WIDTHS.filter((w) => w < own), null];
  const jobs = [];
  for (const width of sizes) {
    const base = (p) => (width === null ? p : p.resize({ width }));
    const name = (e) => path.join(out, width === null ? `${stem}.${e}` : `${stem}-${width}w.${e}`);
    const pipeline = () => base(sharp(input).autoOrient());
    jobs.push(pipeline().jpeg(JPEG).toFile(name(ext)));
    jobs.push(pipeline().avif(AVIF).toFile(name('avif')));
    jobs.push(pipeline().webp(WEBP).toFile(name('webp')));
  }
  await Promise.all(jobs);
}

let next = 0;
async function worker() {
  while (next < files.length) await photo(files[next++]);
}
await Promise.all(Array.from({ length: FILES_AT_ONCE }, worker));
