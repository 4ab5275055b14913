// browser.mjs URL: loads a page in headless Chromium (Debian's, driven by playwright-core) and
// prints what happened as JSON: every response, every failed request or HTTP error, page errors,
// the module graph's DOM marker, whether the web font loaded, which file each <picture> chose and
// whether every image variant in kiln's manifest decodes at its stated size. Exits 1 unless the
// marker says "ready", the font loaded, every picture and variant decoded and nothing failed.
import { chromium } from 'playwright-core';

const url = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.KILN_CHROMIUM || '/usr/bin/chromium',
  // As root in a sandbox with no network but loopback: no sandbox, no background connections.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const failures = [];
const responses = [];
try {
  const page = await browser.newPage();
  page.on('requestfailed', (r) => failures.push(`failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => {
    responses.push({ url: r.url(), status: r.status(), encoding: r.headers()['content-encoding'] ?? null });
    if (r.status() >= 400) failures.push(`${r.status()}: ${r.url()}`);
  });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  await page.goto(url, { waitUntil: 'networkidle' });
  const marker = await page.waitForFunction(() => document.documentElement.dataset.kiln, null, { timeout: 10000 })
    .then((h) => h.jsonValue()).catch(() => null);
  const font = await page.evaluate(async () => { await document.fonts.ready; return document.fonts.check('16px "Example Sans"'); });
  // Which source each <picture> chose, and whether every image variant in kiln's manifest decodes
  // at the size the manifest states (AVIF included, which only a browser decodes here).
  const pictures = await page.evaluate(() => [...document.querySelectorAll('picture img')].map((i) => ({
    currentSrc: i.currentSrc, complete: i.complete, naturalWidth: i.naturalWidth })));
  const variants = await page.evaluate(async () => {
    const manifest = await (await fetch('/static/manifest.json')).json();
    const checks = [];
    for (const entry of Object.values(manifest.assets)) {
      for (const v of entry.variants ?? []) {
        const img = new Image();
        img.src = manifest.public_url + v.file;
        const decoded = await img.decode().then(() => true, () => false);
        checks.push({ file: v.file, decoded, ok: decoded && img.naturalWidth === v.width && img.naturalHeight === v.height });
      }
    }
    return checks;
  });
  if (process.env.KILN_SCREENSHOT) await page.screenshot({ path: process.env.KILN_SCREENSHOT });
  const ok = marker === 'ready' && font && failures.length === 0 && pictures.every((p) => p.complete && p.naturalWidth > 0)
    && variants.every((v) => v.ok);
  console.log(JSON.stringify({ ok, marker, font, failures, pictures, variants, responses }));
  process.exitCode = ok ? 0 : 1;
} finally {
  await browser.close();
}
