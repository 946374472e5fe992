#!/usr/bin/env bash
# The microcontroller toolchain (targets/mcu): Debian's Arm bare-metal GCC, newlib, and QEMU's Arm system
# emulator.
exec bash "$(dirname "$0")/apt-install.sh" "mcu toolchain" gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
