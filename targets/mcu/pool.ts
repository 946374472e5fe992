/**
 * The size of WAMR's pool in a firmware image (targets/mcu): everything WAMR allocates comes from it (main.c hands
 * it to wasm_runtime_full_init; the platform layer serves os_mmap, the linear memory, from it too), so it is sized
 * per module from what WAMR 2.4.3 allocates for it on the board's 32-bit build, measured by counting every
 * allocation (firmware.c's wrapper of wasm_runtime_malloc) over the MLPerf Tiny int8 models:
 *
 * - the linear memory: WAMR trims a memory that never grows to __heap_base rounded up to 8 bytes (the blob's
 *   arena and static data; WASM_ENABLE_SHRUNK_MEMORY), and the platform's page is 8 bytes, so it is exactly that;
 * - the execution environment: the interpreter's stack (main.c's, the compiler's MODEL_STACK_BYTES) and its header;
 * - the interpreter's module and instance: the code rewritten for the fast interpreter dominates (a handler and
 *   2-byte operand offsets per operation; local.get and constants emit no code of their own but their consumers'
 *   offsets, and a local.set after an operation none), and the loader's temporaries, freed before the instance is
 *   made, leave holes (1.3 to 6.0 KiB) that the linear memory and the stack do not fit in: the pool must reach as
 *   far as the highest block. That reach, found as the smallest pool each model boots and runs in, lies 25.2 KiB
 *   beyond the linear memory and the stack for KWS's 4431 instructions, 4.9 for AD's 540, 27.2 for the streaming
 *   wake word's 4715, 29.4 for IC's 5210 and 31.5 for VWW's 5474: within 5.5 bytes per instruction + 2.25 KiB on
 *   each (0.1 to 0.9 KiB to spare). Per instruction it is below what it was before the compact kernels kept their
 *   requantization constants in locals (6.25 B + 2 KiB then): a local.get costs the count one instruction and the
 *   rewritten code nothing. Plus copies of the data segments (a wasm-scalar blob's weights, which WAMR copies
 *   because the blob is read-only: AD's 278 KiB leave 0.8 KiB more of holes);
 * - the AOT module: its machine code, copied to RAM to be relocated, with the PLT of WAMR's runtime helpers
 *   (20 bytes each) and the same structures: within the AOT file's size + 6 KiB on every model (0.3 to 0.9 KiB to
 *   spare);
 * - the allocator: a 4-byte header per block, 8-byte rounding, and the pool's own header;
 * - a margin of 512 bytes.
 *
 * If a module ever needs more, WAMR's allocation fails at boot and the image says which request failed and how
 * much of the pool was free (firmware.c), and `teenygrad run` names the shortfall.
 */
import type { Manifest } from "../../compiler/codegen/manifest.js";
import type { WasmInfo } from "../../compiler/host/wasm-info.js";
import type { McuEngine } from "./build.js";

/** WAMR 2.4.3 on a 32-bit microcontroller (the board's build: fast interpreter or AOT runtime, shared heap) */
export const WAMR_MCU_COSTS = {
  /** the allocator's header in front of its heap (gc_heap_t), and per block */
  poolHeaderBytes: 192,
  blockHeaderBytes: 4,
  blockAlignBytes: 8,
  /** WASMExecEnv in front of the interpreter stack (72 with the AOT runtime) */
  execEnvBytes: { interpreter: 64, aot: 72 },
  /** the fast interpreter's module, instance and the loader's holes: per wasm instruction, and beyond that */
  interpreterBytesPerInstruction: 5.5,
  interpreterFixedBytes: 2304,
  /** the AOT module beyond its file's bytes: the PLT and the structures */
  aotFixedBytes: 6 * 1024,
  marginBytes: 512,
};

export interface PoolSize {
  /** what main.c's pool array gets */
  bytes: number;
  /** the blob's linear memory as WAMR allocates it */
  linearMemory: number;
  /** the loaded module and its instance (for AOT, with its machine code) */
  module: number;
  /** the interpreter stack and its execution environment */
  execEnv: number;
  /** block headers, rounding, the pool's header, the margin */
  overhead: number;
}

const align = (n: number, to: number) => Math.ceil(n / to) * to;
const block = (bytes: number) => align(bytes + WAMR_MCU_COSTS.blockHeaderBytes, WAMR_MCU_COSTS.blockAlignBytes);

/** the linear memory WAMR allocates for a blob: trimmed to __heap_base when it never grows, else its pages */
export function wamrLinearMemory(manifest: Manifest): number {
  return manifest.memory.heapBase === undefined ? manifest.memory.bytes : align(manifest.memory.heapBase, 8);
}

/** WAMR's pool for a blob in firmware: see the file's comment for where each term comes from */
export function wamrPoolSize(info: WasmInfo, manifest: Manifest, engine: McuEngine, stackBytes: number, aotModuleBytes = 0): PoolSize {
  const c = WAMR_MCU_COSTS;
  const linearMemory = wamrLinearMemory(manifest);
  const module = (engine === "aot" ? aotModuleBytes + c.aotFixedBytes : Math.ceil(c.interpreterBytesPerInstruction * info.instructionCounts.total) + c.interpreterFixedBytes) + info.dataBytes;
  const execEnv = stackBytes + c.execEnvBytes[engine];
  const overhead = block(linearMemory) - linearMemory + block(execEnv) - execEnv + c.poolHeaderBytes + c.marginBytes;
  return { bytes: align(linearMemory + module + execEnv + overhead, 8), linearMemory, module, execEnv, overhead };
}
