#!/usr/bin/env bash
# Installs the TensorFlow Lite reference interpreter (PyPI's ai-edge-litert, pinned), TensorFlow Lite Micro's
# Python interpreter (tflite-micro, pinned: scripts/tflm_arena.py measures its smallest arena for npm run mlperf)
# and numpy into a venv in the teenygrad cache, outside the repository: ${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}/litert-<version>/.
# Idempotent: when that venv already imports the interpreter it only prints its path. test/tflite*.test.ts,
# test/mlperf*.test.ts and scripts/mlperf.ts find it there (compiler/import/tflite/litert.ts), or at $TEENYGRAD_LITERT_PYTHON.
set -euo pipefail

LITERT_VERSION=2.3.0 # keep in sync with LITERT_VERSION in compiler/import/tflite/litert.ts
NUMPY_VERSION=2.3.5
TFLITE_MICRO_VERSION=0.dev20261023182759 # PyPI publishes only nightly builds
CACHE="${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}"
VENV="$CACHE/litert-$LITERT_VERSION"
PY="$VENV/bin/python"

probe() { "$PY" -c "from ai_edge_litert.interpreter import Interpreter; from tflite_micro.python.tflite_micro import runtime; import numpy" >/dev/null 2>&1; }

if [ -x "$PY" ] && probe; then
  echo "ai-edge-litert $LITERT_VERSION and tflite-micro $TFLITE_MICRO_VERSION already installed: $PY"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "error: $PYTHON not found; install Python 3.9-3.13 with venv and pip, then rerun $0" >&2
  exit 1
fi
echo "creating $VENV and installing ai-edge-litert==$LITERT_VERSION tflite-micro==$TFLITE_MICRO_VERSION numpy==$NUMPY_VERSION from PyPI..."
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "ai-edge-litert==$LITERT_VERSION" "tflite-micro==$TFLITE_MICRO_VERSION" "numpy==$NUMPY_VERSION"
probe || { echo "error: $PY cannot import ai_edge_litert and tflite_micro after installing them" >&2; exit 1; }
echo "installed: $PY"
