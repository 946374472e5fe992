#!/usr/bin/env bash
# The microcontroller toolchain (targets/mcu): Debian's Arm bare-metal GCC, newlib, and QEMU's Arm system
# emulator. Idempotent: installs only what is missing, retrying while another apt holds the lock.
set -euo pipefail

packages=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "mcu toolchain: ${packages[*]} already installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
for attempt in 1 2 3 4 5 6; do
  if $sudo apt-get update -qq && $sudo apt-get install -y --no-install-recommends "${missing[@]}"; then
    exit 0
  fi
  echo "apt-get failed (attempt $attempt; another install may hold the lock): retrying in 20 s" >&2
  sleep 20
done
exit 1
