#!/usr/bin/env bash
# Installs the ONNX references (PyPI's onnx and onnxruntime, pinned) and numpy into a venv in the teenygrad cache,
# outside the repository: ${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}/onnx-<version>/. Idempotent. test/onnx-control-flow.test.ts
# finds it there (test/onnx-reference.ts), or at $TEENYGRAD_ONNX_PYTHON, and builds its models and expected outputs with it.
set -euo pipefail

ONNX_VERSION=1.22.0 # keep in sync with ONNX_VERSION in test/onnx-reference.ts
ORT_VERSION=1.24.4
NUMPY_VERSION=2.3.5
CACHE="${TEENYGRAD_CACHE:-$HOME/.cache/teenygrad}"
VENV="$CACHE/onnx-$ONNX_VERSION"
PY="$VENV/bin/python"

probe() { "$PY" -c "import onnx, onnxruntime, numpy" >/dev/null 2>&1; }

if [ -x "$PY" ] && probe; then
  echo "onnx $ONNX_VERSION and onnxruntime $ORT_VERSION already installed: $PY"
  exit 0
fi
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || { echo "error: $PYTHON not found; install Python 3.10-3.13 with venv and pip, then rerun $0" >&2; exit 1; }
echo "creating $VENV and installing onnx==$ONNX_VERSION onnxruntime==$ORT_VERSION numpy==$NUMPY_VERSION from PyPI..."
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "onnx==$ONNX_VERSION" "onnxruntime==$ORT_VERSION" "numpy==$NUMPY_VERSION"
probe || { echo "error: $PY cannot import onnx and onnxruntime after installing them" >&2; exit 1; }
echo "installed: $PY"
