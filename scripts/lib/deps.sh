# Sourced by scripts/test and scripts/example: installs what kiln's build and tests need, only
# when it is missing, from the package registries (Debian's apt, crates.io via cargo).

apt_install() { # apt_install PKG... : install Debian packages that are not installed yet
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "--- installing ${missing[*]} (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_rust() {
  command -v cargo >/dev/null || { echo "kiln needs a Rust toolchain (https://rustup.rs)" >&2; exit 1; }
  rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true
}

ensure_build_deps() {
  ensure_rust
}

ensure_test_deps() {
  ensure_build_deps
  # The JS tests evaluate the built module graph with Node.
  command -v node >/dev/null || apt_install nodejs
}
