#!/usr/bin/env bash
# Installs what Vigil needs to build, test and run its demo, when it is missing:
# Debian packages (TPM software stack, software TPM, tpm2-tools, a C compiler, gcab to build
# test cabinets, openssl and systemd for the packaging tests) and the
# rustfmt/clippy components. Sourced by run-tests.sh and demo.sh; safe to run twice.
set -euo pipefail

# openssl (the production-certificate guide's commands) and systemd (systemd-analyze verify
# of the units in packaging/) for tests/tests/packaging.rs.
VIGIL_APT_PACKAGES=(libtss2-dev pkg-config swtpm swtpm-tools tpm2-tools gcc libc6-dev ca-certificates gcab openssl systemd chromium libnss3-tools curl postgresql)

vigil_setup() {
  local missing=()
  for pkg in "${VIGIL_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "==> installing Debian packages: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || { echo "need root or sudo to install ${missing[*]}" >&2; return 1; }
      sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "cargo is not installed: install a Rust toolchain (rustup, Rust >= 1.89) first" >&2
      return 1
    fi
  fi
  if command -v rustup >/dev/null; then
    for component in rustfmt clippy; do
      rustup component list --installed 2>/dev/null | grep -q "^$component" \
        || rustup component add "$component" >/dev/null 2>&1 \
        || echo "warning: could not add rustup component $component" >&2
    done
  fi
}
