#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (idempotent: does nothing when /usr/bin/chromium exists).
# targets/chromium/runner.ts and test/browser.test.ts drive it through playwright-core, which downloads no browser.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "chromium already installed: $("$CHROMIUM" --version)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: apt-get not found; install Chromium with your package manager or set TEENYGRAD_CHROMIUM to its binary" >&2
  exit 1
fi

# root installs directly; anyone else goes through sudo
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

echo "installing the Debian chromium package..."
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

"$CHROMIUM" --version
echo "installed: $CHROMIUM"
