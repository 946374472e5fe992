import { fail } from "../errors.js";
import { inspectWasm, type WasmInfo } from "../host/wasm-info.js";
import type { Target } from "../../targets/index.js";
import { compileAssemblyScript } from "./asc.js";
import type { EntryProgram } from "./emit.js";
import { kernelLibrary } from "./library.js";
import { linkEntry, NeedsAsc } from "./link.js";
import { importSharedMemory, linkThreadedEntry, type ThreadLayout } from "./threads.js";
import { MANIFEST_SECTION, type Manifest } from "./manifest.js";
import { concat, readSleb, readUleb as leb, section, SECTION, sleb, splitSections, uleb, type RawSection } from "./wasm.js";

export { SECTION, splitSections };

const PAGE = 65536;
/** memory addresses are 16-byte aligned; WAMR also rounds __data_end up to 16 */
const HEAP_BASE_ALIGN = 16;

export interface BuiltModule {
  wasm: Uint8Array;
  info: WasmInfo;
  pages: number;
  /** first byte above everything the code touches in linear memory (exported as __heap_base) */
  heapBase: number;
  /** time in asc: the model's entry on the asc path, building the kernel library on a cold cache */
  ascMillis: number;
  codegen: CodegenReport;
}

/**
 * How the code was made: "kernel-library" links the entry built directly as WebAssembly with the cached
 * kernel library; "asc" compiles the entry's AssemblyScript source with the kernels (asked for, or
 * because the entry uses something the direct builder does not emit: `reason`).
 */
export interface CodegenReport {
  path: "kernel-library" | "asc";
  reason?: string;
  millis: number;
}

export interface BuildOptions {
  target: Target;
  optimizeLevel?: 0 | 1 | 2 | 3;
  memoryBase: number;
  weights: { offset: number; bytes: Uint8Array; embedded: boolean };
  manifest: (pages: number, heapBase: number, features: string[]) => Manifest;
  /** "kernel-library" (default) falls back to asc for an entry it cannot build */
  codegen?: "kernel-library" | "asc";
  /** target wasm-simd-threads: the threaded schedule's shared buffers (compiler/codegen/threads.ts) */
  threads?: ThreadLayout;
  /** called when the code generation path is chosen */
  onProgress?: (stage: string) => void;
}

/**
 * Makes a model's code: linked from the kernel library when the entry's program allows it (no AssemblyScript
 * compile), else with asc over the entry source; then patches it (patchModule).
 */
export async function buildModule(entry: { source: string; program: EntryProgram | { unsupported: string } }, opts: BuildOptions): Promise<BuiltModule> {
  const start = performance.now();
  const progress = opts.onProgress ?? (() => {});
  let reason = opts.codegen === "asc" ? "asked for" : "unsupported" in entry.program ? entry.program.unsupported : null;
  if (reason === null && !("unsupported" in entry.program)) {
    progress(`linking the entry with the kernel library for ${opts.target.name}`);
    const library = await kernelLibrary(opts.target, opts.optimizeLevel);
    try {
      const binary = opts.threads
        ? linkThreadedEntry(library.index, entry.program, { simd: opts.target.simd, threads: opts.threads })
        : linkEntry(library.index, entry.program, { simd: opts.target.simd });
      return { ...patchModule(binary, opts), ascMillis: library.ascMillis, codegen: { path: "kernel-library", millis: performance.now() - start } };
    } catch (e) {
      if (!(e instanceof NeedsAsc)) throw e;
      reason = e.message;
    }
  }
  if (opts.threads) fail(`target ${opts.target.name} needs the kernel-library path, which this model cannot take: ${reason}`);
  progress(`compiling the kernels for ${opts.target.name} (asc, binaryen -O${opts.optimizeLevel ?? 3}: ${reason})`);
  const { binary, millis } = await compileAssemblyScript(entry.source, { simd: opts.target.simd, relaxedSimd: opts.target.relaxedSimd, optimizeLevel: opts.optimizeLevel, flags: ["--memoryBase", String(opts.memoryBase), ...(opts.target.features.includes("bulk-memory") ? [] : ["--disable", "bulk-memory"])] });
  return { ...patchModule(binary, opts), ascMillis: millis, codegen: { path: "asc", reason: reason ?? undefined, millis: performance.now() - start } };
}

/**
 * Fixes the compiled module's memory at its final size: AssemblyScript's static data sits
 * above `memoryBase`, the weights become one more data segment (unless shipped as a separate file),
 * and initial == maximum pages so nothing can grow. The end of the used bytes is exported as the immutable
 * globals __heap_base and __data_end: WAMR's loader then shrinks the memory of a module without memory.grow
 * to exactly that (wasm_loader.c, WASM_ENABLE_SHRUNK_MEMORY), where other engines map whole 64 KiB pages.
 * Last, the manifest goes in a custom section.
 * The patching is done on the binary directly: re-serialising megabytes of weights through binaryen
 * would cost more than the whole compile.
 */
function patchModule(binary: Uint8Array, opts: BuildOptions): Omit<BuiltModule, "ascMillis" | "codegen"> {
  const sections = splitSections(binary);
  const data = sections.find((s) => s.id === SECTION.data);
  const segments = data ? dataSegmentsOf(data.payload) : { count: 0, end: 0 };
  const addWeights = opts.weights.embedded && opts.weights.bytes.byteLength > 0;
  const used = Math.max(opts.memoryBase, segments.end, addWeights ? opts.weights.offset + opts.weights.bytes.byteLength : 0);
  const heapBase = Math.max(HEAP_BASE_ALIGN, Math.ceil(used / HEAP_BASE_ALIGN) * HEAP_BASE_ALIGN);
  const pages = Math.max(1, Math.ceil(heapBase / PAGE));
  if (pages > opts.target.maxPages) fail(`the model needs ${pages} pages of memory; target ${opts.target.name} allows ${opts.target.maxPages}`);

  const weightSegment = addWeights
    ? concat([uleb(0), [0x41], sleb(opts.weights.offset), [0x0b], uleb(opts.weights.bytes.byteLength), opts.weights.bytes])
    : null;
  const importedGlobals = importedGlobalCount(sections.find((s) => s.id === SECTION.import));
  const globals = sections.find((s) => s.id === SECTION.global);
  const ownGlobals = globals ? leb(globals.payload, 0) : { value: 0, next: 0 };
  const boundGlobal = concat([[0x7f, 0x00, 0x41], sleb(heapBase), [0x0b]]); // immutable i32 = heapBase
  const globalSection = section(SECTION.global, concat([uleb(ownGlobals.value + 2), globals ? globals.payload.subarray(ownGlobals.next) : [], boundGlobal, boundGlobal]));
  const rebuilt: Uint8Array[] = [];
  let sawData = false;
  for (const s of sections) {
    if (s.id === SECTION.global) rebuilt.push(globalSection);
    else if (s.id === SECTION.export) {
      if (!globals) rebuilt.push(globalSection);
      const count = leb(s.payload, 0);
      const boundExport = (name: string, index: number) => concat([uleb(name.length), new TextEncoder().encode(name), [0x03], uleb(index)]);
      const first = importedGlobals + ownGlobals.value;
      rebuilt.push(section(SECTION.export, concat([uleb(count.value + 2), s.payload.subarray(count.next), boundExport("__heap_base", first), boundExport("__data_end", first + 1)])));
    } else if (s.id === SECTION.memory) rebuilt.push(section(SECTION.memory, concat([uleb(1), [0x01], uleb(pages), uleb(pages)])));
    else if (s.id === SECTION.dataCount) rebuilt.push(section(SECTION.dataCount, uleb(segments.count + (addWeights ? 1 : 0))));
    else if (s.id === SECTION.data) {
      sawData = true;
      const body = s.payload.subarray(leb(s.payload, 0).next);
      rebuilt.push(section(SECTION.data, concat([uleb(segments.count + (addWeights ? 1 : 0)), body, ...(weightSegment ? [weightSegment] : [])])));
    } else rebuilt.push(s.raw);
  }
  if (!sections.some((s) => s.id === SECTION.memory)) fail("internal: the compiled module has no memory");
  if (!sections.some((s) => s.id === SECTION.export)) fail("internal: the compiled module has no exports");
  if (!sawData && weightSegment) rebuilt.push(section(SECTION.data, concat([uleb(1), weightSegment])));

  // a threaded blob's workers share one memory the host creates: the module imports it
  const withoutManifest = concat([binary.subarray(0, 8), ...(opts.threads ? importSharedMemory(splitSections(concat([binary.subarray(0, 8), ...rebuilt])), pages) : rebuilt)]);
  const info = inspectWasm(withoutManifest, "compiled module");
  const forbidden = info.features.filter((f) => !opts.target.features.includes(f));
  if (forbidden.length) fail(`the compiled module uses ${forbidden.join(", ")}, which target ${opts.target.name} forbids`);
  if (info.usesMemoryGrow) fail("internal: the compiled module contains memory.grow");
  const manifest = new TextEncoder().encode(JSON.stringify(opts.manifest(pages, heapBase, info.features)));
  const name = new TextEncoder().encode(MANIFEST_SECTION);
  const wasm = concat([withoutManifest, section(SECTION.custom, concat([uleb(name.length), name, manifest]))]);
  return { wasm, info: inspectWasm(wasm, "compiled module"), pages, heapBase };
}

/** How many globals the import section declares (they come before the module's own in the index space). */
function importedGlobalCount(imports: RawSection | undefined): number {
  if (!imports) return 0;
  const p = imports.payload;
  const count = leb(p, 0);
  let at = count.next, globals = 0;
  const skipName = () => {
    const n = leb(p, at);
    at = n.next + n.value;
  };
  const skipLimits = () => {
    const flags = p[at++];
    at = leb(p, at).next;
    if (flags & 1) at = leb(p, at).next;
  };
  for (let i = 0; i < count.value; i++) {
    skipName();
    skipName();
    const kind = p[at++];
    if (kind === 0x00) at = leb(p, at).next; // function: type index
    else if (kind === 0x01) { at++; skipLimits(); } // table: element type, limits
    else if (kind === 0x02) skipLimits(); // memory
    else if (kind === 0x03) { at += 2; globals++; } // global: value type, mutability
    else fail(`internal: import of unknown kind ${kind}`);
  }
  return globals;
}

/** Segment count and the highest byte any active segment (with an i32.const offset) initialises. */
function dataSegmentsOf(payload: Uint8Array): { count: number; end: number } {
  const count = leb(payload, 0);
  let at = count.next, end = 0;
  for (let i = 0; i < count.value; i++) {
    const flags = leb(payload, at);
    at = flags.next;
    if (flags.value === 2) at = leb(payload, at).next; // explicit memory index
    let offset = 0;
    if (flags.value !== 1) {
      if (payload[at] !== 0x41) fail("internal: AssemblyScript emitted a data segment with a non-constant offset");
      const off = readSleb(payload, at + 1);
      offset = off.value;
      at = off.next + 1; // skip `end`
    }
    const size = leb(payload, at);
    at = size.next + size.value;
    if (flags.value !== 1) end = Math.max(end, offset + size.value);
  }
  return { count: count.value, end };
}

