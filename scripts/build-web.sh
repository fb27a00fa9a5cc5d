#!/usr/bin/env bash
# Builds kiln's browser demo into a static folder any HTTP server can serve:
#   scripts/build-web.sh [OUT]        (OUT defaults to target/web)
# then e.g. `python3 -m http.server -d target/web 8000` and open http://127.0.0.1:8000/ in a
# browser with WebGPU. Adds the wasm32 target if missing and installs wasm-bindgen-cli at the
# exact version of the wasm-bindgen dependency (Cargo.toml pins it with `=`).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/web}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

version=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "FATAL: no pinned wasm-bindgen = \"=x.y.z\" in Cargo.toml" >&2; exit 1; }
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version"
  cargo install wasm-bindgen-cli --version "$version"
fi

# The library as a cdylib for this build only, so native builds keep linking just the rlib.
cargo rustc --lib --release --target wasm32-unknown-unknown --crate-type cdylib
wasm=target/wasm32-unknown-unknown/release/kiln.wasm

rm -rf "$out"
mkdir -p "$out/pkg" "$out/conformance"
wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" "$wasm"
cp examples/web/index.html examples/web/app.js examples/web/style.css \
  examples/web/seed_cnn.safetensors "$out/"
cp tests/data/conformance/cases.json tests/data/conformance/cases.safetensors "$out/conformance/"
echo "wrote $out ($(du -sh "$out" | cut -f1)); serve it, e.g.: python3 -m http.server -d $out 8000"
