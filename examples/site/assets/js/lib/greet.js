export function greet(name) {
  return `Hello from ${name}: every URL on this page is fingerprinted.`;
}
