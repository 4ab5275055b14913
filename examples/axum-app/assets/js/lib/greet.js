export function greet(name) {
  return `Hello from ${name}: these assets were built by build.rs and are served from the binary.`;
}
