// images-score.mjs SRC DSSIM TOOL=DIR...: bytes and a perceptual score of what each tool made of
// the JPEGs in SRC (scripts/bench.sh, `images` rows). Prints a Markdown table: for each tool, each
// format (avif, webp, jpg) and size (the photo's own size, or the resized widths), the files, their
// bytes, and the mean and median DSSIM against the source (0 is identical; lower is better).
//
// A tool's folder holds its outputs under kiln's logical names (`photo.avif`, `photo-480w.webp`);
// a folder with a kiln `manifest.json` is read through it (its files carry fingerprints).
//
// The reference for a full-size output is the source JPEG decoded by libvips (sharp), upright
// (EXIF orientation applied) and in sRGB (a photo with another colour profile converted, as both
// tools convert it). The reference for a resized output is that decoded source resized to the
// output's own width and height with Lanczos3 (libvips), from the full decode: kiln resizes with
// fast_image_resize's Lanczos3 from the full decode; sharp shrinks large JPEGs while decoding
// (by 2, 4 or 8 in the DCT) and then applies the same libvips Lanczos3; so the resized scores carry
// the two resamplers' differences as well as the codecs'. The full-size scores carry only the
// codecs' (and, for one Adobe RGB photo, qcms's conversion to sRGB in kiln against lcms's here).
//
// Every image is decoded by sharp (libheif for AVIF, 10-bit decoded to 8-bit) into a PNG that
// dssim (the `dssim` crate's CLI, which compares in a linear-light, perceptual colour space at
// several scales) reads.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

const [src, dssim, ...tools] = process.argv.slice(2);
const NAME = /^(.*?)(?:-(\d+)w)?\.(avif|webp|jpe?g)$/i;

// tool -> [{ stem, width (null: full size), format, file }]
function outputs(dir) {
  const manifest = path.join(dir, 'manifest.json');
  const named = fs.existsSync(manifest)
    ? Object.entries(JSON.parse(fs.readFileSync(manifest, 'utf8')).assets).map(([logical, a]) => [logical, path.join(dir, a.file)])
    : fs.readdirSync(dir).map((f) => [f, path.join(dir, f)]);
  return named.flatMap(([logical, file]) => {
    const m = NAME.exec(logical);
    if (!m) return [];
    const format = m[3].toLowerCase().replace('jpeg', 'jpg');
    return [{ stem: m[1], width: m[2] ? Number(m[2]) : null, format, file, bytes: fs.statSync(file).size }];
  });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-score-'));
const png = async (pipeline, name) => {
  const out = path.join(tmp, name);
  await pipeline.toColourspace('srgb').png({ compressionLevel: 1 }).toFile(out);
  return out;
};

const results = tools.map((t) => {
  const i = t.lastIndexOf('=');
  const [tool, dir] = [t.slice(0, i), t.slice(i + 1)];
  return { tool, outs: outputs(dir) };
});
const stems = [...new Set(results.flatMap((r) => r.outs.map((o) => o.stem)))].sort();
const sources = Object.fromEntries(fs.readdirSync(src).map((f) => [f.replace(/\.[^.]+$/, ''), path.join(src, f)]));
const scores = new Map(); // output file -> dssim

try {
  for (const stem of stems) {
    const { data, info } = await sharp(sources[stem]).autoOrient().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
    // Outputs of this photo, grouped by their pixel size (the tools may round a height apart).
    const bySize = new Map();
    results.forEach((r, i) => r.outs.forEach((o, j) => {
      if (o.stem !== stem) return;
      const size = o.width === null ? 'full' : String(o.width);
      bySize.set(size, [...(bySize.get(size) || []), { o, name: `${i}-${j}.png` }]);
    }));
    for (const [size, outs] of bySize) {
      const decoded = [];
      for (const { o, name } of outs) {
        const file = await png(sharp(o.file), name);
        const { width, height } = await sharp(file).metadata();
        decoded.push({ o, file, dims: `${width}x${height}` });
      }
      for (const dims of new Set(decoded.map((d) => d.dims))) {
        const [w, h] = dims.split('x').map(Number);
        const ref = size === 'full'
          ? await png(sharp(data, raw), 'ref.png')
          : await png(sharp(data, raw).resize(w, h, { kernel: 'lanczos3', fit: 'fill' }), 'ref.png');
        const these = decoded.filter((d) => d.dims === dims);
        // A few at a time: dssim holds every image it compares (an 18-megapixel photo takes
        // hundreds of MB in its colour space).
        for (let k = 0; k < these.length; k += 3) {
          const chunk = these.slice(k, k + 3);
          const lines = execFileSync(dssim, [ref, ...chunk.map((d) => d.file)], { encoding: 'utf8' }).trim().split('\n');
          chunk.forEach((d, n) => scores.set(d.o.file, Number(lines[n].split(/\s+/)[0])));
        }
      }
      decoded.forEach((d) => fs.rmSync(d.file));
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log('| tool | format | size | files | bytes | DSSIM mean | DSSIM median |');
console.log('|---|---|---|---:|---:|---:|---:|');
for (const { tool, outs } of results) {
  for (const format of ['avif', 'webp', 'jpg']) {
    for (const [size, pick] of [['own size', (o) => o.width === null], ['resized', (o) => o.width !== null]]) {
      const these = outs.filter((o) => o.format === format && pick(o));
      if (!these.length) continue;
      const s = these.map((o) => scores.get(o.file));
      const bytes = these.reduce((a, o) => a + o.bytes, 0);
      console.log(`| ${tool} | ${format} | ${size} | ${these.length} | ${bytes} | ${mean(s).toFixed(5)} | ${median(s).toFixed(5)} |`);
    }
  }
}
