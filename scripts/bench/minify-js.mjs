// minify-js.mjs swc|terser SRC OUT: minifies every .js/.mjs under SRC into OUT (same paths) with
// compress + mangle and a source map, using every core (swc's async API runs on its own thread
// pool; terser runs in one worker per core, as webpack's TerserPlugin does). License comments
// are kept, as kiln keeps them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

// Try the file as an ES module first and as a classic script if that fails to parse, which is
// what kiln's own detection amounts to.
async function both(f) {
  try { return await f(true); } catch (e) { return await f(false); }
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.name.startsWith('.')) return [];
    return e.isDirectory() ? walk(p) : /\.(m?js)$/.test(e.name) ? [p] : [];
  });
}

function write(out, rel, code, map) {
  const dest = path.join(out, rel);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.writeFileSync(dest, code);
  if (map) fs.writeFileSync(dest + '.map', typeof map === 'string' ? map : JSON.stringify(map));
}

async function terserFiles(src, out, files) {
  const { minify } = await import('terser');
  for (const rel of files) {
    const code = fs.readFileSync(path.join(src, rel), 'utf8');
    const r = await both((module) => minify(code, { compress: true, mangle: true, module, sourceMap: true, format: { comments: 'some' } }));
    write(out, rel, r.code, r.map);
  }
}

if (!isMainThread) {
  await terserFiles(workerData.src, workerData.out, workerData.files);
  parentPort.postMessage('done');
} else {
  const [tool, src, out] = process.argv.slice(2);
  const files = walk(src).map((f) => path.relative(src, f));
  if (tool === 'swc') {
    const swc = await import('@swc/core');
    await Promise.all(files.map(async (rel) => {
      const code = fs.readFileSync(path.join(src, rel), 'utf8');
      const r = await both((module) => swc.minify(code, { compress: true, mangle: true, module, sourceMap: true, format: { comments: 'some' } }));
      write(out, rel, r.code, r.map);
    }));
  } else {
    // Largest first, dealt round-robin to one worker per core.
    const sized = files.map((f) => [fs.statSync(path.join(src, f)).size, f]).sort((a, b) => b[0] - a[0]);
    const n = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
    const chunks = Array.from({ length: n }, (_, i) => sized.filter((_, j) => j % n === i).map(([, f]) => f));
    await Promise.all(chunks.map((files) => new Promise((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { src, out, files } });
      w.on('message', resolve);
      w.on('error', reject);
    })));
  }
}
