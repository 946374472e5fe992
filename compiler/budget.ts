import type { Manifest } from "./codegen/manifest.js";
import { fail } from "./errors.js";
import type { WasmInfo } from "./host/wasm-info.js";

/**
 * What a blob needs on a device. Flash holds the module (and the weights file, when shipped apart);
 * RAM holds the whole linear memory, weights included: instantiation copies data segments into it.
 */
export interface Footprint {
  flash: { bytes: number; code: number; weights: number; other: number };
  ram: { bytes: number; pages: number; weights: number; arena: number; other: number };
}

export function footprint(wasmBytes: number, info: WasmInfo, manifest: Manifest): Footprint {
  const weightsFile = manifest.weights.embedded ? 0 : manifest.weights.bytes;
  const flashBytes = wasmBytes + weightsFile;
  return {
    flash: { bytes: flashBytes, code: info.codeBytes, weights: manifest.weights.bytes, other: flashBytes - info.codeBytes - manifest.weights.bytes },
    ram: {
      bytes: manifest.memory.bytes,
      pages: manifest.memory.pages,
      weights: manifest.weights.bytes,
      arena: manifest.arena.bytes,
      other: manifest.memory.bytes - manifest.weights.bytes - manifest.arena.bytes,
    },
  };
}

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
    over.push(`RAM needs ${kib(fp.ram.bytes)} (${fp.ram.pages} pages of 64 KiB: weights ${kib(fp.ram.weights)}, arena ${kib(fp.ram.arena)}, other ${kib(fp.ram.other)}) but the budget is ${kib(budget.ram)}: ${kib(fp.ram.bytes - budget.ram)} over`);
  }
  if (budget.flash !== undefined && fp.flash.bytes > budget.flash) {
    over.push(`flash needs ${kib(fp.flash.bytes)} (code ${kib(fp.flash.code)}, weights ${kib(fp.flash.weights)}, other ${kib(fp.flash.other)}) but the budget is ${kib(budget.flash)}: ${kib(fp.flash.bytes - budget.flash)} over`);
  }
  if (over.length) fail(`over budget: ${over.join("; ")}`);
}
