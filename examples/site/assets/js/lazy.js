export function lazyMessage() {
  return 'This text came from a module loaded with import().';
}
