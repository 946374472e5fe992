/**
 * Microcontroller boards a firmware image can be built for (targets/mcu): a declarative description of the
 * CPU, the memory map and budget, how WAMR is built for it, and how QEMU emulates it.
 */
import { fail } from "../../compiler/errors.js";

export interface Board {
  name: string;
  description: string;
  /** GCC's -mcpu, and the rest of the code-generation flags for the core */
  cpu: string;
  cflags: string[];
  /** WAMR's BUILD_TARGET (core/iwasm/common/arch/invokeNative_*.s, aot_reloc_*.c) and its invokeNative */
  wamrTarget: string;
  wamrTargetDefine: string;
  invokeNative: string;
  /** WAMR's relocations for AOT code on this architecture (core/iwasm/aot/arch/) */
  aotReloc: string;
  /** wamrc's --target / --cpu / --target-abi for ahead-of-time code that runs on this core */
  aot: { target: string; cpu: string; abi: string };
  /** where code and constants live (read-only at run time); `bytes` is the default budget, `maxBytes` the board's */
  flash: { origin: number; bytes: number; maxBytes: number };
  /** where everything written at run time lives */
  ram: { origin: number; bytes: number; maxBytes: number };
  /** newlib's heap (what rdimon's start-up allocates; stdin and stdout are unbuffered) and the C stack, inside the
      RAM budget: over twice the most any MLPerf Tiny int8 image used (npm run bench:mcu prints both) */
  heapBytes: number;
  stackBytes: number;
  qemu: {
    machine: string;
    cpu: string;
    /** SysTick's clock: the processor clock of the emulated board */
    systickHz: number;
    /** -icount shift: every instruction advances virtual time by 2^shift ns */
    icountShift: number;
  };
}

export const BOARDS: Record<string, Board> = {
  "mps2-an386": {
    name: "mps2-an386",
    description: "Arm MPS2 with the AN386 FPGA image: Cortex-M4F, 4 MB SSRAM for code at 0x0 and 4 MB for data at 0x20000000 (QEMU's mps2-an386)",
    cpu: "cortex-m4",
    cflags: ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    wamrTarget: "THUMBV7EM",
    wamrTargetDefine: "BUILD_TARGET_THUMB_VFP",
    invokeNative: "invokeNative_thumb_vfp.s",
    aotReloc: "aot_reloc_thumb.c",
    aot: { target: "thumbv7em", cpu: "cortex-m4", abi: "eabihf" },
    // the code SSRAM stands in for flash (the MPU makes it read-only); the budget is a typical Cortex-M4 part's
    flash: { origin: 0x0000_0000, bytes: 1024 * 1024, maxBytes: 4 * 1024 * 1024 },
    ram: { origin: 0x2000_0000, bytes: 256 * 1024, maxBytes: 4 * 1024 * 1024 },
    heapBytes: 1024,
    stackBytes: 4 * 1024,
    // 25 MHz SYSCLK; a shift of 6 (64 ns per instruction) puts 1.6 SysTick ticks in every instruction
    qemu: { machine: "mps2-an386", cpu: "cortex-m4", systickHz: 25_000_000, icountShift: 6 },
  },
};

export function findBoard(name: string): Board {
  const board = BOARDS[name];
  if (!board) fail(`unknown board '${name}' (boards: ${Object.keys(BOARDS).join(", ")})`);
  return board;
}

/** instructions executed in `ticks` SysTick ticks under -icount (one instruction is 2^shift ns of virtual time) */
export function ticksToInstructions(board: Board, ticks: number): number {
  const nanosPerTick = 1e9 / board.qemu.systickHz;
  return Math.round((ticks * nanosPerTick) / 2 ** board.qemu.icountShift);
}
