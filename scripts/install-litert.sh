#!/usr/bin/env bash
# Installs the TensorFlow Lite reference interpreter (PyPI's ai-edge-litert, pinned), TensorFlow Lite Micro's
# Python interpreter (tflite-micro, pinned: scripts/tflm_arena.py measures its smallest arena for npm run mlperf)
# and numpy into a venv in the teenygrad cache, outside the repository: ${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}/litert-<version>/.
# Idempotent: when that venv already imports the interpreter it only prints its path. test/tflite*.test.ts,
# test/mlperf*.test.ts and scripts/mlperf.ts find it there (compiler/import/tflite/litert.ts), or at $TEENYGRAD_LITERT_PYTHON.
set -euo pipefail
source "$(dirname "$0")/python-venv.sh"

LITERT_VERSION=2.3.0 # keep in sync with LITERT_VERSION in compiler/import/tflite/litert.ts
NUMPY_VERSION=2.3.5
TFLITE_MICRO_VERSION=0.dev20261023182759 # PyPI publishes only nightly builds
ensure_venv "${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}/litert-$LITERT_VERSION" \
  "from ai_edge_litert.interpreter import Interpreter; from tflite_micro.python.tflite_micro import runtime; import numpy" \
  "ai-edge-litert==$LITERT_VERSION" "tflite-micro==$TFLITE_MICRO_VERSION" "numpy==$NUMPY_VERSION"
