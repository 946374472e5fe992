#!/usr/bin/env bash
# The microcontroller toolchain (targets/mcu): Debian's Arm bare-metal GCC, newlib, QEMU's Arm system emulator,
# and LLVM 15's development files with g++ for WAMR's AOT compiler, which is then built from the vendored WAMR
# sources (npm run engines fetches them) into the teenygrad cache, once per WAMR version, LLVM and driver.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-install.sh "mcu toolchain" gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm llvm-15-dev g++
node --import tsx scripts/build-wamrc.ts
