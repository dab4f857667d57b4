#!/usr/bin/env bash
# The main job: orc's demo program under every available tier, then the
# embedding example. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build -q --release --bin orc --example kaleidoscope_embed
orc=${CARGO_TARGET_DIR:-target}/release/orc
for tier in 0 1 adaptive; do
  echo "== orc run examples/demo.kal --tier $tier"
  "$orc" run --tier "$tier" --print-results examples/demo.kal
  echo "== orc run examples/demo.kal --tier $tier --eager"
  "$orc" run --tier "$tier" --eager --print-results examples/demo.kal | tail -n 2
done
echo "== cargo run --example kaleidoscope_embed"
"${CARGO_TARGET_DIR:-target}/release/examples/kaleidoscope_embed"
