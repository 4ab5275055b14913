// The example page's module: a static import (rewritten by kiln to a fingerprinted name) that
// marks the page ready once the graph ran.
import { greet } from './lib/greet.js';

document.querySelector('#greeting').textContent = greet('axum');
document.documentElement.dataset.kiln = 'ready';
