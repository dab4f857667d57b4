#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with only Rust on it:
# installs what is missing, then checks formatting, lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy -q --workspace --all-targets -- -D warnings
echo "== cargo doc (warnings denied)" >&2
RUSTDOCFLAGS="-D warnings" cargo doc -q --workspace --no-deps
echo "== cargo test (builds first: several minutes on 2 cores)" >&2
cargo test -q --workspace
echo "orc: all tests passed" >&2
