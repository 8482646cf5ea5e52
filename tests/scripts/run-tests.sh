#!/usr/bin/env bash
# Vigil's test command: installs what is missing, then formatting, lints, build and every
# test (unit, fixture, end-to-end with swtpm and tpm2-tools). `.ci/run` calls this.
#
# Environment:
#   VIGIL_FIXTURES    real evidence from other projects (default: ../shared/fixtures beside
#                     the clone); with CI set, missing fixtures fail the run
#   CARGO_TARGET_DIR  reuse a build directory between runs (optional)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=setup.sh
source tests/scripts/setup.sh
vigil_setup

export VIGIL_FIXTURES="${VIGIL_FIXTURES:-$root/../shared/fixtures}"
export TSS2_LOG="${TSS2_LOG:-all+none}"
echo "==> fixtures: $VIGIL_FIXTURES"

step() { echo "==> $*"; local t=$SECONDS; "$@"; echo "    ($((SECONDS - t)) s)"; }
step cargo fmt --all -- --check
step cargo clippy --workspace --all-targets --locked -- -D warnings
step cargo build --workspace --bins --locked
step cargo test --workspace --locked
