# Sourced by the install-*.sh scripts: one venv in the teenygrad cache with pinned PyPI packages, made once.
# ensure_venv VENV PROBE PACKAGE... : when VENV's python already runs the PROBE code, prints that and returns;
# otherwise creates VENV afresh with ${PYTHON:-python3}, pip-installs the packages and checks the probe again.
ensure_venv() {
  local venv="$1" probe="$2"
  shift 2
  local py="$venv/bin/python"
  if [ -x "$py" ] && "$py" -c "$probe" >/dev/null 2>&1; then
    echo "already installed: $venv ($*)"
    return 0
  fi
  local python="${PYTHON:-python3}"
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found; install Python 3 with venv and pip (Flower needs 3.11 or newer) or set PYTHON, then rerun" >&2
    exit 1
  fi
  echo "creating $venv and installing $* from PyPI..."
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  "$py" -c "$probe" >/dev/null 2>&1 || { echo "error: $py fails '$probe' after installing $*" >&2; exit 1; }
  echo "installed: $py"
}
