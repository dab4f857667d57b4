#!/usr/bin/env bash
# The main job: a demo of orc. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo run -q --release --example session_demo
