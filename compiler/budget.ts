import type { Manifest } from "./codegen/manifest.js";
import { fail } from "./errors.js";
import type { WasmInfo } from "./host/wasm-info.js";
import { TARGETS, WAMR_PAGE_BYTES } from "../targets/index.js";

/**
 * What a blob needs on a device, for the engine its target runs in. Flash holds the module, plus the weights
 * when they are shipped apart (a weights file, or wamr-flash's shared-heap array). RAM holds:
 * - the linear memory as the engine allocates it: whole 64 KiB pages in V8 and wasmtime; in WAMR exactly the
 *   bytes below __heap_base (its loader shrinks a memory that cannot grow) rounded up to its 4 KiB page. The
 *   weights are in it unless the target reads them from flash (wamr-flash);
 * - in WAMR also its module and instance structures (the code rewritten for the fast interpreter, copies of the
 *   data segments, which hold the weights of a self-contained blob) and the interpreter stack: WAMR_COSTS,
 *   calibrated on targets/wamr/main.c (see README, "Device RAM"). For V8 and wasmtime only linear memory counts.
 */
export interface Footprint {
  /** what the RAM figure models: "wamr" (targets/wamr/main.c) or "linear-memory" (V8, wasmtime: pages only) */
  model: "wamr" | "linear-memory";
  flash: { bytes: number; code: number; weights: number; other: number };
  ram: {
    bytes: number;
    /** linear memory as the engine allocates it */
    linearMemory: number;
    pages: number;
    /** weights inside linear memory */
    weights: number;
    arena: number;
    /** the rest of linear memory: reserved bytes, AssemblyScript's static data, page rounding */
    other: number;
    /** the engine's module and instance structures (0 when not modelled) */
    engine: number;
    /** the interpreter's stack (0 when not modelled) */
    stack: number;
  };
}

/**
 * WAMR 2.4.3's fast interpreter, configured as targets/wamr/build.ts does, embedded as targets/wamr/main.c. Its pool's
 * high-water mark (module, instance, WAMR's bookkeeping; the peak comes while the loader rewrites the code) is
 * bounded by fixedBytes + perInstruction × the module's instructions + its data segments' bytes (WAMR copies them);
 * the two constants are an upper envelope fitted to the MLPerf Tiny int8 models built at optimize levels 1 and 3
 * (measured by `npm run mlperf`, checked by test/device-ram.test.ts). stackBytes, the interpreter stack main.c
 * gets, covers the smallest stack each of those blobs ran with (1.1–2.2 KiB) with margin: kernel calls nest
 * shallowly (run() → kernel → helper), and WAMR wants twice the next frame free.
 */
export const WAMR_COSTS = { pageBytes: WAMR_PAGE_BYTES, fixedBytes: 6144, perInstruction: 7.25, stackBytes: 2560 };

export function footprint(wasmBytes: number, info: WasmInfo, manifest: Manifest): Footprint {
  const weightsApart = manifest.weights.embedded ? 0 : manifest.weights.bytes;
  const weightsInMemory = manifest.weights.sharedHeap ? 0 : manifest.weights.bytes;
  const flashBytes = wasmBytes + weightsApart;
  const flash = { bytes: flashBytes, code: info.codeBytes, weights: manifest.weights.bytes, other: flashBytes - info.codeBytes - manifest.weights.bytes };
  const wamr = TARGETS[manifest.target]?.defaultEngine === "wamr";
  const pagesBytes = manifest.memory.bytes;
  const linearMemory = wamr ? alignUp(manifest.memory.heapBase ?? pagesBytes, WAMR_COSTS.pageBytes) : pagesBytes;
  const engine = wamr ? WAMR_COSTS.fixedBytes + Math.ceil(WAMR_COSTS.perInstruction * info.instructionCounts.total) + info.dataBytes : 0;
  const stack = wamr ? WAMR_COSTS.stackBytes : 0;
  return {
    model: wamr ? "wamr" : "linear-memory",
    flash,
    ram: {
      bytes: linearMemory + engine + stack,
      linearMemory,
      pages: manifest.memory.pages,
      weights: weightsInMemory,
      arena: manifest.arena.bytes,
      other: linearMemory - weightsInMemory - manifest.arena.bytes,
      engine,
      stack,
    },
  };
}

const alignUp = (n: number, to: number): number => Math.ceil(n / to) * to;

const UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2 };

/** "256K", "1M", "1.5MiB", "300000" → bytes (K and M are binary, as on datasheets). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) fail(`bad size '${text}': use e.g. 256K, 1M or 300000`);
  return Math.floor(Number(m[1]) * unit);
}

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

/** Fails naming each budget that is exceeded, by how much, and what fills it. */
export function checkBudget(fp: Footprint, budget: { ram?: number; flash?: number }): void {
  const over: string[] = [];
  if (budget.ram !== undefined && fp.ram.bytes > budget.ram) {
    over.push(`RAM needs ${kib(fp.ram.bytes)} (${describeRam(fp)}) but the budget is ${kib(budget.ram)}: ${kib(fp.ram.bytes - budget.ram)} over`);
  }
  if (budget.flash !== undefined && fp.flash.bytes > budget.flash) {
    over.push(`flash needs ${kib(fp.flash.bytes)} (code ${kib(fp.flash.code)}, weights ${kib(fp.flash.weights)}, other ${kib(fp.flash.other)}) but the budget is ${kib(budget.flash)}: ${kib(fp.flash.bytes - budget.flash)} over`);
  }
  if (over.length) fail(`over budget: ${over.join("; ")}`);
}

/** what fills the RAM figure, for reports and budget errors */
export function describeRam(fp: Footprint): string {
  const memory = `weights ${kib(fp.ram.weights)}, arena ${kib(fp.ram.arena)}, other ${kib(fp.ram.other)}`;
  if (fp.model === "linear-memory") return `${fp.ram.pages} pages of 64 KiB: ${memory}`;
  return `WAMR: linear memory ${kib(fp.ram.linearMemory)} (${memory}), module and instance ${kib(fp.ram.engine)}, stack ${kib(fp.ram.stack)}`;
}
