import { fail } from "../errors.js";

/**
 * Minimal WebAssembly binary plumbing: LEB128, sections, and a reader for the kernel library that finds
 * every index immediate in the function bodies (calls, globals, type indices), so a model's module can keep
 * only the functions it reaches and renumber them without decoding anything else.
 */

export const SECTION = { custom: 0, type: 1, import: 2, function: 3, table: 4, memory: 5, global: 6, export: 7, start: 8, element: 9, code: 10, data: 11, dataCount: 12 };
export const EXTERNAL = { function: 0, table: 1, memory: 2, global: 3 };
export const VALTYPE = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
export type ValType = keyof typeof VALTYPE;

export function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

export function sleb(v: number | bigint): number[] {
  const out: number[] = [];
  let x = BigInt(v);
  for (;;) {
    const byte = Number(x & 0x7fn);
    x >>= 7n;
    const done = (x === 0n && !(byte & 0x40)) || (x === -1n && byte & 0x40);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

export function readUleb(b: Uint8Array, at: number): { value: number; next: number } {
  let value = 0, shift = 0, byte: number;
  do {
    byte = b[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return { value, next: at };
}

export function readSleb(b: Uint8Array, at: number): { value: number; next: number } {
  let value = 0, shift = 0, byte: number;
  do {
    byte = b[at++];
    value |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  if (shift < 32 && byte & 0x40) value |= -1 << shift;
  return { value, next: at };
}

/** where a LEB128 starting at `at` ends */
const skipLeb = (b: Uint8Array, at: number): number => {
  while (b[at++] & 0x80);
  return at;
};

export const section = (id: number, payload: Uint8Array | number[]): Uint8Array => concat([[id], uleb(payload.length), payload]);
export const vec = (items: (Uint8Array | number[])[]): Uint8Array => concat([uleb(items.length), ...items]);
export const encodeName = (name: string): Uint8Array => {
  const bytes = new TextEncoder().encode(name);
  return concat([uleb(bytes.length), bytes]);
};

export function concat(parts: (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface RawSection { id: number; payload: Uint8Array; raw: Uint8Array }

export function splitSections(bin: Uint8Array): RawSection[] {
  const out: RawSection[] = [];
  let at = 8;
  while (at < bin.length) {
    const id = bin[at];
    const size = readUleb(bin, at + 1);
    const end = size.next + size.value;
    out.push({ id, payload: bin.subarray(size.next, end), raw: bin.subarray(at, end) });
    at = end;
  }
  return out;
}

// --- reading the kernel library -------------------------------------------------------------------

/** An index immediate inside a function body: its byte range and what it indexes. */
export interface IndexRef { at: number; end: number; space: "function" | "global" | "type"; index: number }

export interface FuncType { params: ValType[]; results: ValType[]; raw: Uint8Array }

export interface LibraryFunction {
  type: number;
  /** the body as in the code section (locals and instructions, without the size prefix) */
  body: Uint8Array;
  refs: IndexRef[];
}

/** The kernel library as the linker needs it; built once per library and process. */
export interface LibraryIndex {
  types: FuncType[];
  /** function imports come first in the function index space; `raw` is module + name, without the kind */
  imports: { raw: Uint8Array; type: number }[];
  functions: LibraryFunction[];
  memory: Uint8Array | null;
  /** global section entries: value type, mutability and a constant initialiser */
  globals: Uint8Array[];
  /** exports by name: kind and index */
  exports: Map<string, { kind: number; index: number }>;
}

const VALTYPE_NAMES = new Map<number, ValType>(Object.entries(VALTYPE).map(([k, v]) => [v, k as ValType]));

export function indexLibrary(binary: Uint8Array): LibraryIndex {
  const lib: LibraryIndex = { types: [], imports: [], functions: [], memory: null, globals: [], exports: new Map() };
  const funcTypes: number[] = [];
  for (const s of splitSections(binary)) {
    const p = s.payload;
    const count = readUleb(p, 0);
    let at = count.next;
    const items = Array.from({ length: count.value });
    if (s.id === SECTION.type) {
      for (const _ of items) {
        const start = at;
        if (p[at++] !== 0x60) fail("internal: the kernel library has a non-function type");
        const valtypes = () => {
          const n = readUleb(p, at);
          at = n.next;
          const list = [...p.subarray(at, at + n.value)].map((t) => VALTYPE_NAMES.get(t) ?? fail(`internal: kernel library value type 0x${t.toString(16)}`));
          at += n.value;
          return list;
        };
        const params = valtypes(), results = valtypes();
        lib.types.push({ params, results, raw: p.subarray(start, at) });
      }
    } else if (s.id === SECTION.import) {
      for (const _ of items) {
        const start = at;
        for (let k = 0; k < 2; k++) {
          const n = readUleb(p, at);
          at = n.next + n.value;
        }
        const raw = p.subarray(start, at);
        if (p[at++] !== EXTERNAL.function) fail("internal: the kernel library imports something other than functions");
        const type = readUleb(p, at);
        at = type.next;
        lib.imports.push({ raw, type: type.value });
      }
    } else if (s.id === SECTION.function) {
      for (const _ of items) {
        const t = readUleb(p, at);
        funcTypes.push(t.value);
        at = t.next;
      }
    } else if (s.id === SECTION.memory) lib.memory = p;
    else if (s.id === SECTION.global) {
      for (const _ of items) {
        const start = at;
        at += 2; // value type, mutability
        const op = p[at];
        if (op !== 0x41 && op !== 0x42 && op !== 0x43 && op !== 0x44 && op !== 0xfd) fail("internal: a kernel library global has a non-constant initialiser");
        at = endOfConstant(p, at);
        lib.globals.push(p.subarray(start, at));
      }
    } else if (s.id === SECTION.export) {
      for (const _ of items) {
        const n = readUleb(p, at);
        const name = new TextDecoder().decode(p.subarray(n.next, n.next + n.value));
        at = n.next + n.value;
        const kind = p[at++];
        const index = readUleb(p, at);
        at = index.next;
        lib.exports.set(name, { kind, index: index.value });
      }
    } else if (s.id === SECTION.code) {
      items.forEach((_, i) => {
        const size = readUleb(p, at);
        const body = p.subarray(size.next, size.next + size.value);
        at = size.next + size.value;
        lib.functions.push({ type: funcTypes[i], body, refs: scanBody(body) });
      });
    } else if (s.id !== SECTION.custom) fail(`internal: the kernel library has section ${s.id}, which the linker does not handle`);
  }
  return lib;
}

/** the end of a constant expression `<const> end` starting at `at` */
function endOfConstant(p: Uint8Array, at: number): number {
  const op = p[at++];
  at = op === 0x43 ? at + 4 : op === 0x44 ? at + 8 : op === 0xfd ? skipLeb(p, at) + 16 : skipLeb(p, at);
  if (p[at] !== 0x0b) fail("internal: a kernel library global's initialiser is not a single constant");
  return at + 1;
}

/** SIMD (0xfd) opcodes with a memory argument; those with a lane index after it; those with 16 bytes of immediate */
const SIMD_MEMARG = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 92, 93]);
const SIMD_MEMARG_LANE = new Set([84, 85, 86, 87, 88, 89, 90, 91]);

/** Walks a function body's instructions, recording every function, global and type index immediate. */
function scanBody(b: Uint8Array): IndexRef[] {
  const refs: IndexRef[] = [];
  const ref = (at: number, space: IndexRef["space"]) => {
    const v = readUleb(b, at);
    refs.push({ at, end: v.next, space, index: v.value });
    return v.next;
  };
  const memarg = (at: number) => {
    const align = readUleb(b, at);
    if (align.value & 0x40) fail("internal: the kernel library uses multiple memories");
    return skipLeb(b, align.next);
  };
  const locals = readUleb(b, 0);
  let at = locals.next;
  for (let i = 0; i < locals.value; i++) at = skipLeb(b, at) + 1;
  while (at < b.length) {
    const op = b[at++];
    if (op === 0x02 || op === 0x03 || op === 0x04) {
      // block type: empty, a value type, or a type index (a positive s33)
      if (b[at] === 0x40 || VALTYPE_NAMES.has(b[at])) at++;
      else at = ref(at, "type");
    } else if (op === 0x0c || op === 0x0d || op === 0x20 || op === 0x21 || op === 0x22) at = skipLeb(b, at);
    else if (op === 0x0e) {
      const n = readUleb(b, at);
      at = n.next;
      for (let i = 0; i <= n.value; i++) at = skipLeb(b, at);
    } else if (op === 0x10 || op === 0x12) at = ref(at, "function");
    else if (op === 0x11 || op === 0x13) fail("internal: the kernel library calls through a table, which the linker does not handle");
    else if (op === 0x1c) {
      const n = readUleb(b, at);
      at = n.next + n.value;
    } else if (op === 0x23 || op === 0x24) at = ref(at, "global");
    else if (op >= 0x28 && op <= 0x3e) at = memarg(at);
    else if (op === 0x3f || op === 0x40) at++;
    else if (op === 0x41 || op === 0x42) at = skipLeb(b, at);
    else if (op === 0x43) at += 4;
    else if (op === 0x44) at += 8;
    else if (op === 0xd2) at = ref(at, "function");
    else if (op === 0xd0) at++;
    else if (op === 0xfc) {
      const sub = readUleb(b, at);
      at = sub.next;
      if (sub.value === 8) at = skipLeb(b, at) + 1; // memory.init: data index, memory
      else if (sub.value === 9) at = skipLeb(b, at); // data.drop
      else if (sub.value === 10) at += 2; // memory.copy
      else if (sub.value === 11) at += 1; // memory.fill
      else if (sub.value > 11) fail(`internal: the kernel library uses table instruction 0xfc ${sub.value}`);
    } else if (op === 0xfd) {
      const sub = readUleb(b, at);
      at = sub.next;
      if (SIMD_MEMARG.has(sub.value)) at = memarg(at);
      else if (SIMD_MEMARG_LANE.has(sub.value)) at = memarg(at) + 1;
      else if (sub.value === 12 || sub.value === 13) at += 16; // v128.const, i8x16.shuffle
      else if (sub.value >= 21 && sub.value <= 34) at += 1; // extract / replace lane
    } else if (op === 0x25 || op === 0x26 || op === 0xd3 || op === 0xd4 || op >= 0xd5 && op < 0xfc) fail(`internal: the kernel library uses opcode 0x${op.toString(16)}, which the linker does not decode`);
    // everything else has no immediate
  }
  return refs;
}

/** A function body with its index immediates renumbered, size-prefixed as in the code section. */
export function relocatedBody(fn: LibraryFunction, renumber: (space: IndexRef["space"], index: number) => number): Uint8Array {
  const parts: (Uint8Array | number[])[] = [];
  let at = 0;
  for (const r of fn.refs) {
    const index = renumber(r.space, r.index);
    parts.push(fn.body.subarray(at, r.at), r.space === "type" ? sleb(index) : uleb(index)); // a block's type index is an s33
    at = r.end;
  }
  parts.push(fn.body.subarray(at));
  const body = concat(parts);
  return concat([uleb(body.length), body]);
}
