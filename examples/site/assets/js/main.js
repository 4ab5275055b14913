// The example page's entry module: a static import, a dynamic import and an asset by URL, all
// rewritten by kiln to fingerprinted names. It marks the page ready once the whole graph ran.
import { greet } from './lib/greet.js';

const logo = new URL('../img/logo.svg', import.meta.url);

async function main() {
  document.querySelector('#greeting').textContent = greet('kiln');
  const img = document.createElement('img');
  img.src = logo.href;
  img.alt = 'logo';
  img.width = 64;
  document.querySelector('#logo').append(img);
  const { lazyMessage } = await import('./lazy.js');
  document.querySelector('#lazy').textContent = lazyMessage();
  await img.decode();
  document.documentElement.dataset.kiln = 'ready';
}

main().catch((error) => {
  document.documentElement.dataset.kiln = `error: ${error}`;
});
