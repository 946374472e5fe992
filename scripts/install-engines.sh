#!/usr/bin/env bash
# Installs the engines the tests and benchmarks run blobs in, into the teenygrad cache (idempotent: each part
# does nothing when it is already there).
# - the pinned wasmtime CLI: ${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}/engines/wasmtime-<version>/bin/wasmtime,
#   where targets/wasmtime/runner.ts looks first after $TEENYGRAD_WASMTIME;
# - teenygrad-native-run (WAMR and wasm3, targets/native-runner/):
#   .../engines/native-runner-<hash of the crate's sources>/bin/teenygrad-native-run, where
#   targets/native-runner/runner.ts looks after $TEENYGRAD_NATIVE_RUNNER. A changed crate gets a new directory;
#   .../engines/native-runner-<crate version> links to the latest build, for installed packages (which do not
#   ship the crate's sources to hash).
set -euo pipefail

WASMTIME_VERSION=48.0.8 # keep in sync with WASMTIME_VERSION in targets/wasmtime/runner.ts
CACHE="${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}"
CRATE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../targets/native-runner" && pwd)"

require_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust (https://rustup.rs) and rerun $0" >&2
    exit 1
  fi
}

install_wasmtime() {
  local root="$CACHE/engines/wasmtime-$WASMTIME_VERSION"
  local bin="$root/bin/wasmtime"
  if [ -x "$bin" ]; then
    echo "wasmtime $WASMTIME_VERSION already installed: $bin"
    return
  fi
  require_cargo
  echo "building wasmtime $WASMTIME_VERSION with cargo (this takes several minutes)..."
  # only what `wasmtime run` needs: the CLI runner, the Cranelift compiler and parallel compilation
  cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked \
    --no-default-features --features run,cranelift,parallel-compilation \
    --root "$root"
  "$bin" --version
  echo "installed: $bin"
}

# The native runner compiles WAMR with CMake and a C compiler, wasm3 with the C compiler, and generates both
# FFI bindings with bindgen, which loads libclang. The C embedding's test builds targets/wamr/main.c with CMake
# and the C compiler too.
install_native_prerequisites() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v cc >/dev/null 2>&1 || missing+=(gcc)
  if [ -z "${LIBCLANG_PATH:-}" ] && ! ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so'; then
    missing+=(libclang-dev)
  fi
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: teenygrad-native-run needs ${missing[*]} (CMake, a C compiler, libclang); install them and rerun $0" >&2
    exit 1
  fi
  echo "installing ${missing[*]} with apt-get..."
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
}

install_native_runner() {
  require_cargo
  install_native_prerequisites
  # keep the file list and order in sync with CRATE_SOURCES in targets/native-runner/runner.ts
  local hash
  hash=$(cat "$CRATE/Cargo.toml" "$CRATE/Cargo.lock" "$CRATE/src/main.rs" | sha256sum | cut -c1-16)
  local root="$CACHE/engines/native-runner-$hash"
  local bin="$root/bin/teenygrad-native-run"
  # keep in sync with NATIVE_RUNNER_VERSION in targets/native-runner/runner.ts
  local version
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$CRATE/Cargo.toml" | head -1)
  if [ -x "$bin" ]; then
    echo "teenygrad-native-run already installed: $bin"
    ln -sfn "native-runner-$hash" "$CACHE/engines/native-runner-$version"
    # the C embedding's test takes WAMR's sources from the cargo registry; with the runner cached, nothing
    # fetched them on this machine yet (a no-op when they are there)
    cargo fetch --locked --manifest-path "$CRATE/Cargo.toml" --target "$(rustc -vV | sed -n 's/^host: //p')"
    return
  fi
  echo "building teenygrad-native-run (WAMR and wasm3 from C sources; a few minutes)..."
  local started=$SECONDS
  # build outside the repository: with --path, cargo would otherwise build in the crate's target/, inside the
  # TypeScript tree (CMake leaves files named *.ts there)
  local build
  build=$(mktemp -d)
  cargo install --path "$CRATE" --locked --root "$root" --target-dir "$build"
  rm -rf "$build"
  ln -sfn "native-runner-$hash" "$CACHE/engines/native-runner-$version"
  echo "installed: $bin (built in $((SECONDS - started)) s)"
}

install_wasmtime
install_native_runner
