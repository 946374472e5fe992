#!/usr/bin/env bash
# Installs Flower (PyPI's flwr with its simulation engine, pinned), the wasmtime Python package (pinned) and numpy
# into a venv in the teenygrad cache, outside the repository: ${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}/flower-<version>/.
# The app itself (targets/flower) is not installed: `flwr run` ships it to the SuperLink and SuperNodes as a FAB.
# Idempotent. test/flower.test.ts, `teenygrad federate` and bench/federated.ts find it there or at $TEENYGRAD_FLOWER_VENV.
set -euo pipefail
source "$(dirname "$0")/python-venv.sh"

FLWR_VERSION=1.42.0      # keep in sync with targets/flower/pyproject.toml and FLWR_VERSION in targets/flower/federation.ts
WASMTIME_VERSION=50.0.1  # keep in sync with targets/flower/pyproject.toml
NUMPY_VERSION=2.3.5

ensure_venv "${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}/flower-$FLWR_VERSION" "import flwr, wasmtime, numpy, ray" \
  "flwr[simulation]==$FLWR_VERSION" "wasmtime==$WASMTIME_VERSION" "numpy==$NUMPY_VERSION"
