#!/usr/bin/env bash
# Installs Debian packages that are missing (idempotent), retrying while another apt holds the lock.
# Usage: apt-install.sh WHAT PACKAGE...   (WHAT names the packages in the log)
set -euo pipefail

what=$1; shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "$what: $* already installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
for attempt in 1 2 3 4 5 6; do
  if $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then
    exit 0
  fi
  echo "apt-get failed (attempt $attempt; another install may hold the lock): retrying in 20 s" >&2
  sleep 20
done
exit 1
