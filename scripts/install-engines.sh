#!/usr/bin/env bash
# Installs the pinned wasmtime CLI into the teenygrad cache (idempotent: does nothing when it is already there).
# Where: ${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}/engines/wasmtime-<version>/bin/wasmtime, which is where
# targets/wasmtime/runner.ts looks first after $TEENYGRAD_WASMTIME.
set -euo pipefail

WASMTIME_VERSION=48.0.8 # keep in sync with WASMTIME_VERSION in targets/wasmtime/runner.ts
CACHE="${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}"
ROOT="$CACHE/engines/wasmtime-$WASMTIME_VERSION"
BIN="$ROOT/bin/wasmtime"

if [ -x "$BIN" ]; then
  echo "wasmtime $WASMTIME_VERSION already installed: $BIN"
  exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust (https://rustup.rs) and rerun $0" >&2
  exit 1
fi

echo "building wasmtime $WASMTIME_VERSION with cargo (this takes several minutes)..."
# only what `wasmtime run` needs: the CLI runner, the Cranelift compiler and parallel compilation
cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked \
  --no-default-features --features run,cranelift,parallel-compilation \
  --root "$ROOT"

"$BIN" --version
echo "installed: $BIN"
