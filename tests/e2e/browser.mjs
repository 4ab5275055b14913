// browser.mjs URL: loads a page in headless Chromium (Debian's, driven by playwright-core) and
// prints what happened as JSON: every response, every failed request or HTTP error, page errors
// and console errors (Subresource Integrity mismatches and CORS blocks show up there), the module
// graph's DOM marker, whether the web font loaded, which file each <picture> chose, whether every
// image variant in kiln's manifest decodes at its stated size, and the integrity and crossorigin
// of each stylesheet and module script (and whether the stylesheet applied). Exits 1 unless the
// marker says "ready", the font loaded, every picture and variant decoded and nothing failed.
// kiln's manifest is found through <meta name="kiln-manifest" content="URL"> (else
// /static/manifest.json); its public_url may be a path or a URL on another origin (a CDN).
// KILN_VIEWPORT sets the viewport width (DPR 1); `layoutShift` is the cumulative layout shift.
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
  // KILN_VIEWPORT=400: a 400 px wide viewport at DPR 1 (which <picture> width is chosen).
  const width = Number(process.env.KILN_VIEWPORT || 1280);
  const page = await browser.newPage({ viewport: { width, height: 800 }, deviceScaleFactor: 1 });
  // Cumulative layout shift, observed from the first paint (width/height on images prevent it).
  await page.addInitScript(() => {
    window.__kilnShift = 0;
    window.__kilnShifts = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.hadRecentInput) continue;
        window.__kilnShift += e.value;
        window.__kilnShifts.push({ value: e.value, nodes: e.sources.map((s) => s.node
          ? `${s.node.nodeName}${s.node.id ? '#' + s.node.id : ''}${s.node.className ? '.' + s.node.className : ''}` : '?') });
      }
    }).observe({ type: 'layout-shift', buffered: true });
  });
  page.on('requestfailed', (r) => failures.push(`failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => {
    responses.push({ url: r.url(), status: r.status(), encoding: r.headers()['content-encoding'] ?? null });
    if (r.status() >= 400) failures.push(`${r.status()}: ${r.url()}`);
  });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const at = m.location()?.url;
    failures.push(`console error: ${m.text()}${at && !m.text().includes(at) ? ` (${at})` : ''}`);
  });
  await page.goto(url, { waitUntil: 'networkidle' });
  const marker = await page.waitForFunction(() => document.documentElement.dataset.kiln, null, { timeout: 10000 })
    .then((h) => h.jsonValue()).catch(() => null);
  // document.fonts.check() is also true when no @font-face of that family exists (a stylesheet
  // that never applied): look for the face itself and that it loaded.
  const font = await page.evaluate(async () => {
    await document.fonts.ready;
    return [...document.fonts].some((f) => f.family.replace(/["']/g, '') === 'Example Sans' && f.status === 'loaded')
      && document.fonts.check('16px "Example Sans"');
  });
  // Which source each <picture> chose, and whether every image variant in kiln's manifest decodes
  // at the size the manifest states (AVIF included, which only a browser decodes here).
  const pictures = await page.evaluate(() => [...document.querySelectorAll('picture img')].map((i) => ({
    currentSrc: i.currentSrc, complete: i.complete, naturalWidth: i.naturalWidth })));
  // public_url is resolved against the manifest's URL: a path stays on the page's origin, an
  // absolute URL (a CDN) is used as it is.
  const variants = await page.evaluate(async () => {
    const manifestUrl = new URL(document.querySelector('meta[name="kiln-manifest"]')?.content || '/static/manifest.json',
      document.baseURI).href;
    let manifest;
    try {
      const r = await fetch(manifestUrl);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      manifest = await r.json();
    } catch (e) {
      return [{ file: manifestUrl, decoded: false, ok: false, error: `manifest: ${e}` }];
    }
    const base = new URL(manifest.public_url, manifestUrl);
    const checks = [];
    for (const entry of Object.values(manifest.assets)) {
      for (const v of entry.variants ?? []) {
        const img = new Image();
        img.src = new URL(v.file, base).href;
        const decoded = await img.decode().then(() => true, () => false);
        checks.push({ file: v.file, url: img.src, decoded, ok: decoded && img.naturalWidth === v.width && img.naturalHeight === v.height });
      }
    }
    return checks;
  });
  // The integrity and crossorigin each stylesheet and module script was loaded with, and whether
  // the stylesheet applied: Chromium leaves a sheet blocked by SRI without a CSSStyleSheet (rules
  // null), and gives one blocked by CORS a sheet whose rules throw SecurityError.
  const sri = await page.evaluate(() => [...document.querySelectorAll('link[rel~="stylesheet"], script[type="module"]')].map((el) => {
    const link = el.localName === 'link';
    const entry = { tag: el.localName, url: link ? el.href : el.src, integrity: el.getAttribute('integrity'), crossOrigin: el.crossOrigin };
    if (link) {
      try {
        entry.rules = el.sheet ? el.sheet.cssRules.length : null;
      } catch (e) {
        entry.rules = `unreadable: ${e.name}`;
      }
      entry.applied = typeof entry.rules === 'number' && entry.rules > 0;
    }
    return entry;
  }));
  if (process.env.KILN_SCREENSHOT) await page.screenshot({ path: process.env.KILN_SCREENSHOT });
  const ok = marker === 'ready' && font && failures.length === 0 && pictures.every((p) => p.complete && p.naturalWidth > 0)
    && variants.every((v) => v.ok);
  const layoutShift = await page.evaluate(() => window.__kilnShift);
  const shifts = await page.evaluate(() => window.__kilnShifts);
  console.log(JSON.stringify({ ok, marker, font, failures, pictures, variants, sri, layoutShift, shifts, responses }));
  process.exitCode = ok ? 0 : 1;
} finally {
  await browser.close();
}
