// Test support for the AssemblyScript kernels: compile + instantiate, a seeded PRNG, a bump allocator
// over linear memory that poisons unused bytes, and the tolerance check.
import assert from "node:assert/strict";
import binaryen from "binaryen";
import { compileAssemblyScript } from "../../compiler/codegen/asc.js";

export interface KernelModule {
  name: "simd" | "scalar";
  binary: Uint8Array<ArrayBuffer>;
  /** binaryen text of the module, for instruction scans */
  text: string;
  exports: Record<string, any>;
  memory: WebAssembly.Memory;
}

export async function compileKernels(entry: string, simd: boolean, pages: number): Promise<KernelModule> {
  const { binary } = await compileAssemblyScript(entry, {
    simd,
    flags: ["--initialMemory", String(pages), "--maximumMemory", String(pages)],
  });
  const mod = binaryen.readBinary(binary);
  mod.setFeatures(binaryen.Features.All);
  const text = mod.emitText();
  mod.dispose();
  const { instance } = await WebAssembly.instantiate(binary, {});
  const exports = instance.exports as Record<string, any>;
  return { name: simd ? "simd" : "scalar", binary, text, exports, memory: exports.memory as WebAssembly.Memory };
}

/** mulberry32: small, fast, good enough to draw test shapes and data. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  float(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** inclusive */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  floats(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.float(lo, hi);
    return a;
  }
}

export function seedFor(base: number, label: string): number {
  let h = base >>> 0;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const POISON = 0xff; // every byte 0xff: a NaN as f32, -1 as i32

/**
 * Bump allocator over the module's memory. Buffers start at a random 4-byte (not 16-byte) misalignment
 * and are separated by poisoned guard bytes, so tail overruns and unaligned vector accesses show up.
 */
export class Arena {
  private next = 1024;
  private buffers: { at: number; bytes: number }[] = [];
  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly rng: Rng,
  ) {
    new Uint8Array(memory.buffer).fill(POISON);
  }

  private place(bytes: number): number {
    const at = this.next + 16 + 4 * this.rng.int(0, 3);
    this.next = at + bytes;
    if (this.next + 64 > this.memory.buffer.byteLength) throw new Error(`test arena overflow (${this.next} bytes)`);
    this.buffers.push({ at, bytes });
    return at;
  }

  f32(data: ArrayLike<number>): number {
    const at = this.place(data.length * 4);
    new Float32Array(this.memory.buffer, at, data.length).set(data);
    return at;
  }

  i32(data: ArrayLike<number>): number {
    const at = this.place(data.length * 4);
    new Int32Array(this.memory.buffer, at, data.length).set(data);
    return at;
  }

  bytes(data: Uint8Array): number {
    const at = this.place(data.length);
    new Uint8Array(this.memory.buffer, at, data.length).set(data);
    return at;
  }

  /** An output buffer, left poisoned. */
  out(bytes: number): number {
    return this.place(bytes);
  }

  readF32(at: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, n).slice();
  }

  readI32(at: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, n).slice();
  }

  readBytes(at: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, at, n).slice();
  }

  /** Every byte between buffers must still be poison: no kernel wrote outside its output. */
  assertGuardsIntact(context: string): void {
    const bytes = new Uint8Array(this.memory.buffer);
    let from = 1024;
    for (const { at, bytes: size } of this.buffers) {
      for (let i = from; i < at; i++) {
        if (bytes[i] !== POISON) assert.fail(`${context}: byte ${i} written outside every buffer`);
      }
      from = at + size;
    }
    for (let i = from; i < from + 64; i++) {
      if (bytes[i] !== POISON) assert.fail(`${context}: byte ${i} written past the last buffer`);
    }
  }
}

/**
 * max |got - ref| / max(max |ref|, floor) <= tol; non-finite refs must match exactly (NaN with NaN).
 * `floor` keeps a handful of tiny outputs (e.g. one deep-tail GELU value) from demanding more than
 * f32 can give.
 */
export function assertClose(got: ArrayLike<number>, ref: ArrayLike<number>, tol: number, context: string, floor = 0): void {
  assert.equal(got.length, ref.length, `${context}: length`);
  let maxRef = floor;
  for (let i = 0; i < ref.length; i++) if (Number.isFinite(ref[i])) maxRef = Math.max(maxRef, Math.abs(ref[i]));
  const scale = maxRef || 1;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i];
    const r = ref[i];
    if (Number.isNaN(r) || !Number.isFinite(r)) {
      if (!Object.is(g, r) && !(Number.isNaN(g) && Number.isNaN(r))) assert.fail(`${context}: [${i}] got ${g}, want ${r}`);
      continue;
    }
    const err = Math.abs(g - r) / scale;
    if (!(err <= tol)) assert.fail(`${context}: [${i}] got ${g}, want ${r} (relative error ${err.toExponential(2)} > ${tol})`);
  }
}
