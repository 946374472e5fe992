/**
 * A WebAssembly binary decoder for inspecting compiled blobs: section layout, imports/exports, memory limits,
 * the teenygrad manifest, and the features the code really uses. Every function body is decoded instruction
 * by instruction (immediates included), so a feature is reported only when an instruction, type or segment
 * needs it — never because a byte inside an immediate happens to look like a prefix.
 * Spec: https://webassembly.github.io/spec/core/binary/
 */
import { fail } from "../errors.js";
import { DTYPES, isDType, numel } from "../ir/dtype.js";
import { MANIFEST_SECTION, type Manifest, type TensorSlot } from "../codegen/manifest.js";

export type ExternKind = "func" | "table" | "memory" | "global";

/**
 * Feature names follow LLVM's wasm target features, except "threads" (shared memory + atomics).
 * "extended-const" and "mutable-globals" come from constant expressions and global imports/exports.
 */
export type WasmFeature =
  | "bulk-memory" | "extended-const" | "memory64" | "multimemory" | "multivalue" | "mutable-globals"
  | "nontrapping-fptoint" | "reference-types" | "relaxed-simd" | "sign-ext" | "simd128" | "tail-call" | "threads";

export interface InstructionCounts {
  /** every instruction in function bodies (constant expressions in globals/segments are not counted) */
  total: number;
  simd128: number;
  relaxedSimd: number;
  bulkMemory: number;
  signExt: number;
  nontrappingFptoint: number;
  /** atomics */
  threads: number;
  referenceTypes: number;
  tailCall: number;
  memoryGrow: number;
}

export interface WasmInfo {
  /** in file order; `bytes` is the payload size */
  sections: { id: number; name: string; bytes: number }[];
  imports: { module: string; name: string; kind: ExternKind }[];
  exports: { name: string; kind: ExternKind }[];
  /** memory 0, in 64 KiB pages */
  memory: { initial: number; maximum: number | null; imported: boolean } | null;
  customSections: { name: string; bytes: number }[];
  manifest: Manifest | null;
  /** sorted */
  features: WasmFeature[];
  usesMemoryGrow: boolean;
  instructionCounts: InstructionCounts;
  /** code section payload size */
  codeBytes: number;
  /** total size of all data segments' contents */
  dataBytes: number;
}

const SECTION_NAMES = [
  "custom", "type", "import", "function", "table", "memory", "global", "export", "start", "element", "code", "data",
  "datacount",
];
/** position of each non-custom section id in the required order (datacount sits between element and code) */
const SECTION_ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12 };
const EXTERN_KINDS: ExternKind[] = ["func", "table", "memory", "global"];

const COUNTED: Partial<Record<WasmFeature, keyof InstructionCounts>> = {
  "simd128": "simd128", "relaxed-simd": "relaxedSimd", "bulk-memory": "bulkMemory", "sign-ext": "signExt",
  "nontrapping-fptoint": "nontrappingFptoint", "threads": "threads", "reference-types": "referenceTypes",
  "tail-call": "tailCall",
};

/** SIMD opcodes (after 0xFD) that do not exist: holes left in the final opcode space */
const SIMD_RESERVED = new Set([
  0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb, 0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4,
  0xe2, 0xee,
]);
/** lane count checked for extract/replace_lane 0x15..0x22 */
const SIMD_LANE_OPS: Record<number, number> = {
  0x15: 16, 0x16: 16, 0x17: 16, 0x18: 8, 0x19: 8, 0x1a: 8, 0x1b: 4, 0x1c: 4, 0x1d: 2, 0x1e: 2, 0x1f: 4, 0x20: 4,
  0x21: 2, 0x22: 2,
};
/** v128.load*_lane / store*_lane 0x54..0x5b: memarg then a lane index */
const SIMD_MEM_LANE_OPS: Record<number, number> = {
  0x54: 16, 0x55: 8, 0x56: 4, 0x57: 2, 0x58: 16, 0x59: 8, 0x5a: 4, 0x5b: 2,
};

const BLOCK = 0x02, IF = 0x04, ELSE = 0x05;

class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    /** reads never pass this */
    public end: number,
    private readonly source: string,
  ) {
    this.pos = start;
  }

  fail(what: string, at = this.pos): never {
    fail(`corrupt .wasm (${this.source}): ${what} at byte ${at}`);
  }

  byte(): number {
    if (this.pos >= this.end) this.fail("unexpected end of data");
    return this.bytes[this.pos++];
  }

  /** the next byte without consuming it */
  peek(): number {
    if (this.pos >= this.end) this.fail("unexpected end of data");
    return this.bytes[this.pos];
  }

  skip(n: number): void {
    if (n > this.end - this.pos) this.fail(`needs ${n} bytes, only ${this.end - this.pos} left`);
    this.pos += n;
  }

  u32(): number {
    const at = this.pos;
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      if (i === 4 && b > 0x0f) this.fail("u32 LEB128 too large", at);
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    this.fail("u32 LEB128 too long", at);
  }

  /** an unsigned LEB128 of up to 64 bits; must fit in a JS number exactly */
  u64(): number {
    const at = this.pos;
    let result = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      if (i === 9 && b > 0x01) this.fail("u64 LEB128 too large", at);
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) this.fail("u64 value too large to inspect", at);
        return result;
      }
    }
    this.fail("u64 LEB128 too long", at);
  }

  /**
   * Skips a signed LEB128 of `bits` bits (32, 33 or 64), checking the length and that the unused bits of the
   * last byte are a sign extension. Returns the value when it fits in a JS number (always for 32/33).
   */
  signed(bits: number): number {
    const at = this.pos;
    const maxBytes = Math.ceil(bits / 7);
    let result = 0;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (i === maxBytes - 1) {
          // bits above `bits` in the last byte must all equal the sign bit
          const used = bits - 7 * i; // meaningful bits in this byte, sign bit included
          const high = b >> (used - 1); // the sign bit and everything above it
          if (high !== 0 && high !== 0x7f >> (used - 1)) this.fail(`s${bits} LEB128 has bad padding bits`, at);
        }
        if (b & 0x40) result -= 2 ** (7 * (i + 1));
        return result;
      }
    }
    this.fail(`s${bits} LEB128 too long`, at);
  }

  name(): string {
    const length = this.u32();
    const start = this.pos;
    this.skip(length);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(start, this.pos));
    } catch {
      this.fail("name is not valid UTF-8", start);
    }
  }

  /** a vector length; each element takes at least `minBytes`, so a huge count in a tiny file is caught early */
  count(minBytes = 1): number {
    const at = this.pos;
    const n = this.u32();
    if (n * minBytes > this.end - this.pos) this.fail(`vector of ${n} elements cannot fit in the ${this.end - this.pos} bytes left`, at);
    return n;
  }
}

interface FuncType {
  params: number[];
  results: number[];
}

class Decoder {
  private readonly r: Reader;
  private readonly features = new Set<WasmFeature>();
  private readonly counts: InstructionCounts = {
    total: 0, simd128: 0, relaxedSimd: 0, bulkMemory: 0, signExt: 0, nontrappingFptoint: 0, threads: 0,
    referenceTypes: 0, tailCall: 0, memoryGrow: 0,
  };
  private inBody = false;

  private readonly types: FuncType[] = [];
  /** type index of every function, imported first */
  private readonly funcTypes: number[] = [];
  private readonly globalMutable: boolean[] = [];
  private tableCount = 0;
  private readonly memories: { initial: number; maximum: number | null; imported: boolean; is64: boolean }[] = [];
  private elemCount = 0;
  private dataCount: number | null = null;

  private readonly info: WasmInfo = {
    sections: [], imports: [], exports: [], memory: null, customSections: [], manifest: null, features: [],
    usesMemoryGrow: false, instructionCounts: this.counts, codeBytes: 0, dataBytes: 0,
  };

  constructor(bytes: Uint8Array, private readonly source: string) {
    this.r = new Reader(bytes, 0, bytes.length, source);
  }

  decode(): WasmInfo {
    const r = this.r;
    const { bytes } = r;
    if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      r.fail("not a WebAssembly module (missing the \\0asm magic)", 0);
    }
    const version = new DataView(bytes.buffer, bytes.byteOffset + 4, 4).getUint32(0, true);
    if (version !== 1) {
      r.fail(version === 0x1000d ? "this is a component, not a core module" : `unsupported binary version ${version}`, 4);
    }
    r.pos = 8;
    let lastOrder = 0;
    let functionCount: number | null = null;
    let codeSeen = false;
    let dataSeen = false;
    while (r.pos < bytes.length) {
      const headerAt = r.pos;
      const id = r.byte();
      const size = r.u32();
      const start = r.pos;
      if (size > bytes.length - start) r.fail(`${SECTION_NAMES[id] ?? `id ${id}`} section of ${size} bytes runs past the end of the file`, headerAt);
      const end = start + size;
      if (id !== 0) {
        const order = SECTION_ORDER[id];
        if (order === undefined) r.fail(`unknown or unsupported section id ${id}`, headerAt);
        if (order <= lastOrder) r.fail(`${SECTION_NAMES[id]} section is duplicated or out of order`, headerAt);
        lastOrder = order;
      }
      this.info.sections.push({ id, name: SECTION_NAMES[id], bytes: size });
      r.end = end;
      switch (id) {
        case 0: this.customSection(end); break;
        case 1: this.typeSection(); break;
        case 2: this.importSection(); break;
        case 3: functionCount = this.functionSection(); break;
        case 4: this.tableSection(); break;
        case 5: this.memorySection(); break;
        case 6: this.globalSection(); break;
        case 7: this.exportSection(); break;
        case 8: this.funcIndex(); break;
        case 9: this.elementSection(); break;
        case 10:
          this.codeSection(functionCount ?? 0);
          codeSeen = true;
          this.info.codeBytes = size;
          break;
        case 11: this.dataSection(); dataSeen = true; break;
        case 12: this.dataCount = r.u32(); break;
      }
      if (r.pos !== end) r.fail(`${SECTION_NAMES[id]} section has ${end - r.pos} unread bytes at its end`);
      r.end = bytes.length;
    }
    if (this.dataCount && !dataSeen) r.fail(`datacount section announces ${this.dataCount} data segments but there is no data section`);
    if (functionCount !== null && functionCount > 0 && !codeSeen) r.fail(`function section declares ${functionCount} functions but there is no code section`);

    const memory = this.memories[0];
    this.info.memory = memory ? { initial: memory.initial, maximum: memory.maximum, imported: memory.imported } : null;
    this.info.features = [...this.features].sort();
    this.info.usesMemoryGrow = this.counts.memoryGrow > 0;
    return this.info;
  }

  // ---- sections

  private customSection(end: number): void {
    const name = this.r.name();
    const contentStart = this.r.pos;
    this.r.pos = end;
    this.info.customSections.push({ name, bytes: end - contentStart });
    if (name === MANIFEST_SECTION) {
      if (this.info.manifest) fail(`bad manifest (${this.source}): more than one ${MANIFEST_SECTION} section`);
      this.info.manifest = parseManifest(this.r.bytes.subarray(contentStart, end), this.source);
    }
  }

  private typeSection(): void {
    const r = this.r;
    for (let n = r.count(3); n > 0; n--) {
      const form = r.byte();
      if (form !== 0x60) r.fail(`unsupported type form 0x${hex(form)} (only function types; GC types are not supported)`, r.pos - 1);
      const params = this.valTypes();
      const results = this.valTypes();
      if (results.length > 1) this.features.add("multivalue");
      this.types.push({ params, results });
    }
  }

  private valTypes(): number[] {
    const types: number[] = [];
    for (let n = this.r.count(); n > 0; n--) types.push(this.valType());
    return types;
  }

  private valType(): number {
    const at = this.r.pos;
    const t = this.r.byte();
    switch (t) {
      case 0x7f: case 0x7e: case 0x7d: case 0x7c: return t;
      case 0x7b: this.features.add("simd128"); return t;
      case 0x70: case 0x6f: this.features.add("reference-types"); return t;
      default: this.r.fail(`unknown or unsupported value type 0x${hex(t)}`, at);
    }
  }

  private refType(): void {
    const at = this.r.pos;
    const t = this.r.byte();
    if (t === 0x6f) this.features.add("reference-types");
    else if (t !== 0x70) this.r.fail(`unknown or unsupported reference type 0x${hex(t)}`, at);
  }

  private importSection(): void {
    const r = this.r;
    for (let n = r.count(4); n > 0; n--) {
      const module = r.name();
      const name = r.name();
      const at = r.pos;
      const kindByte = r.byte();
      const kind = EXTERN_KINDS[kindByte];
      if (!kind) r.fail(`unknown or unsupported import kind 0x${hex(kindByte)}`, at);
      this.info.imports.push({ module, name, kind });
      switch (kindByte) {
        case 0: this.funcTypes.push(this.typeIndex()); break;
        case 1: this.tableType(); break;
        case 2: this.memories.push({ ...this.limits("memory"), imported: true }); this.checkMemoryCount(); break;
        case 3: {
          const mutable = this.globalType();
          if (mutable) this.features.add("mutable-globals");
          this.globalMutable.push(mutable);
          break;
        }
      }
    }
  }

  private functionSection(): number {
    const n = this.r.count();
    for (let i = 0; i < n; i++) this.funcTypes.push(this.typeIndex());
    return n;
  }

  private tableSection(): void {
    for (let n = this.r.count(2); n > 0; n--) this.tableType();
  }

  private tableType(): void {
    this.refType();
    this.limits("table");
    if (++this.tableCount > 1) this.features.add("reference-types");
  }

  private memorySection(): void {
    for (let n = this.r.count(2); n > 0; n--) {
      this.memories.push({ ...this.limits("memory"), imported: false });
      this.checkMemoryCount();
    }
  }

  private checkMemoryCount(): void {
    if (this.memories.length > 1) this.features.add("multimemory");
  }

  private limits(of: "memory" | "table"): { initial: number; maximum: number | null; is64: boolean } {
    const r = this.r;
    const at = r.pos;
    const flags = r.byte();
    if (flags > 0x07 || (of === "table" && (flags & 0x02))) r.fail(`unsupported ${of} limits flags 0x${hex(flags)}`, at);
    const is64 = (flags & 0x04) !== 0;
    if (is64) this.features.add("memory64");
    if (flags & 0x02) {
      if (!(flags & 0x01)) r.fail("a shared memory needs a maximum", at);
      this.features.add("threads");
    }
    const initial = is64 ? r.u64() : r.u32();
    const maximum = flags & 0x01 ? (is64 ? r.u64() : r.u32()) : null;
    if (maximum !== null && maximum < initial) r.fail(`${of} maximum ${maximum} is below its initial size ${initial}`, at);
    return { initial, maximum, is64 };
  }

  private globalSection(): void {
    const n = this.r.count(3);
    const firstDefined = this.globalMutable.length;
    for (let i = 0; i < n; i++) {
      const mutable = this.globalType();
      this.globalMutable.push(mutable);
      // a constant expression may only read globals defined before it
      this.constExpr(firstDefined + i);
    }
  }

  /** returns whether the global is mutable */
  private globalType(): boolean {
    this.valType();
    const at = this.r.pos;
    const mut = this.r.byte();
    if (mut > 1) this.r.fail(`bad global mutability 0x${hex(mut)}`, at);
    return mut === 1;
  }

  private exportSection(): void {
    const r = this.r;
    const seen = new Set<string>();
    for (let n = r.count(3); n > 0; n--) {
      const nameAt = r.pos;
      const name = r.name();
      if (seen.has(name)) r.fail(`duplicate export "${name}"`, nameAt);
      seen.add(name);
      const at = r.pos;
      const kindByte = r.byte();
      const kind = EXTERN_KINDS[kindByte];
      if (!kind) r.fail(`unknown or unsupported export kind 0x${hex(kindByte)}`, at);
      const index = r.u32();
      const limit = [this.funcTypes.length, this.tableCount, this.memories.length, this.globalMutable.length][kindByte];
      if (index >= limit) r.fail(`export "${name}" refers to ${kind} ${index}, but there are ${limit}`, at);
      if (kind === "global" && this.globalMutable[index]) this.features.add("mutable-globals");
      this.info.exports.push({ name, kind });
    }
  }

  private elementSection(): void {
    const r = this.r;
    const n = r.count(2);
    this.elemCount = n;
    for (let i = 0; i < n; i++) {
      const at = r.pos;
      const flags = r.u32();
      if (flags > 7) r.fail(`bad element segment flags ${flags}`, at);
      // flags 1..7 are the bulk-memory proposal's segment encodings; an explicit table index is reference-types
      if (flags !== 0) this.features.add("bulk-memory");
      if ((flags & 0x03) === 0x03) this.features.add("reference-types"); // declarative segment
      const passiveOrDeclarative = (flags & 0x01) !== 0;
      const explicitTable = (flags & 0x02) !== 0;
      const usesExpressions = (flags & 0x04) !== 0;
      if (!passiveOrDeclarative) {
        if (explicitTable) this.tableIndex();
        this.constExpr(this.globalMutable.length);
      }
      if (passiveOrDeclarative || explicitTable) {
        if (usesExpressions) {
          this.refType();
        } else {
          const kindAt = r.pos;
          if (r.byte() !== 0x00) r.fail("bad element kind (expected 0x00 funcref)", kindAt);
        }
      }
      for (let count = r.count(); count > 0; count--) {
        if (usesExpressions) this.constExpr(this.globalMutable.length);
        else this.funcIndex();
      }
    }
  }

  private codeSection(functionCount: number): void {
    const r = this.r;
    const n = r.count(2);
    if (n !== functionCount) r.fail(`code section has ${n} bodies but the function section declares ${functionCount}`);
    const importedFunctions = this.funcTypes.length - functionCount;
    const sectionEnd = r.end;
    this.inBody = true;
    for (let i = 0; i < n; i++) {
      const sizeAt = r.pos;
      const size = r.u32();
      if (size > sectionEnd - r.pos) r.fail(`function body ${i} of ${size} bytes runs past the code section`, sizeAt);
      const bodyEnd = r.pos + size;
      r.end = bodyEnd;
      let localCount = this.types[this.funcTypes[importedFunctions + i]].params.length;
      for (let groups = r.count(2); groups > 0; groups--) {
        localCount += r.u32();
        this.valType();
      }
      if (localCount > 0xffffffff) r.fail(`function body ${i} declares too many locals`, sizeAt);
      this.expr(localCount);
      if (r.pos !== bodyEnd) r.fail(`function body ${i} has ${bodyEnd - r.pos} bytes after its final end`);
      r.end = sectionEnd;
    }
    this.inBody = false;
  }

  private dataSection(): void {
    const r = this.r;
    const n = r.count(2);
    if (this.dataCount !== null && n !== this.dataCount) r.fail(`data section has ${n} segments but the datacount section says ${this.dataCount}`);
    for (let i = 0; i < n; i++) {
      const at = r.pos;
      const flags = r.u32();
      if (flags > 2) r.fail(`bad data segment flags ${flags}`, at);
      if (flags === 1) {
        this.features.add("bulk-memory"); // passive segment
      } else {
        if (flags === 2) this.memoryIndex();
        else if (this.memories.length === 0) r.fail("active data segment without a memory", at);
        this.constExpr(this.globalMutable.length);
      }
      const length = r.u32();
      r.skip(length);
      this.info.dataBytes += length;
    }
  }

  // ---- indices

  private typeIndex(): number {
    return this.index(this.types.length, "type");
  }

  private funcIndex(): number {
    return this.index(this.funcTypes.length, "function");
  }

  private tableIndex(): void {
    if (this.index(this.tableCount, "table") !== 0) this.features.add("reference-types");
  }

  private memoryIndex(): void {
    if (this.index(this.memories.length, "memory") !== 0) this.features.add("multimemory");
  }

  private index(limit: number, what: string): number {
    const at = this.r.pos;
    const i = this.r.u32();
    if (i >= limit) this.r.fail(`${what} index ${i} out of range (${limit} defined)`, at);
    return i;
  }

  // ---- code

  /** constant expressions (global initialisers, segment offsets) */
  private constExpr(visibleGlobals: number): void {
    const savedInBody = this.inBody;
    this.inBody = false;
    const r = this.r;
    for (;;) {
      const at = r.pos;
      const op = r.byte();
      if (op === 0x0b) break;
      switch (op) {
        case 0x41: r.signed(32); break;
        case 0x42: r.signed(64); break;
        case 0x43: r.skip(4); break;
        case 0x44: r.skip(8); break;
        case 0x23: this.index(visibleGlobals, "global"); break;
        case 0xd0: this.heapType(); break;
        case 0xd2: this.funcIndex(); this.features.add("reference-types"); break;
        case 0x6a: case 0x6b: case 0x6c: case 0x7c: case 0x7d: case 0x7e:
          this.features.add("extended-const"); // i32/i64 add, sub, mul
          break;
        case 0xfd: {
          const sub = r.u32();
          if (sub !== 0x0c) r.fail(`SIMD opcode 0x${hex(sub)} is not allowed in a constant expression`, at);
          this.features.add("simd128");
          r.skip(16);
          break;
        }
        default: r.fail(`opcode 0x${hex(op)} is not allowed in a constant expression`, at);
      }
    }
    this.inBody = savedInBody;
  }

  private heapType(): void {
    const at = this.r.pos;
    const t = this.r.byte();
    if (t !== 0x70 && t !== 0x6f) this.r.fail(`unknown or unsupported heap type 0x${hex(t)}`, at);
    this.features.add("reference-types");
  }

  private use(feature: WasmFeature): void {
    this.features.add(feature);
    const key = COUNTED[feature];
    if (key && this.inBody) this.counts[key]++;
  }

  private blockType(): void {
    const r = this.r;
    const b = r.peek();
    if (b === 0x40) {
      r.pos++;
    } else if (b === 0x7f || b === 0x7e || b === 0x7d || b === 0x7c || b === 0x7b || b === 0x70 || b === 0x6f) {
      this.valType();
    } else {
      const at = r.pos;
      const index = r.signed(33);
      if (index < 0 || index >= this.types.length) r.fail(`block type index ${index} out of range`, at);
      this.features.add("multivalue"); // type-indexed block types came with multi-value
    }
  }

  private memarg(): void {
    const r = this.r;
    const at = r.pos;
    const flags = r.u32();
    // bit 6 of the alignment field announces an explicit memory index (multi-memory)
    let memory = 0;
    if (flags & 0x40) {
      memory = r.u32();
      if (memory !== 0) this.features.add("multimemory");
    }
    if (memory >= this.memories.length) r.fail(`memory access needs memory ${memory}, but ${this.memories.length} defined`, at);
    // the widest natural alignment is 16 bytes (v128), exponent 4
    if (flags >= 0x80 || (flags & 0x3f) > 4) r.fail(`bad memory access alignment flags 0x${hex(flags)}`, at);
    if (this.memories[memory].is64) r.u64();
    else r.u32();
  }

  private lane(lanes: number): void {
    const at = this.r.pos;
    const lane = this.r.byte();
    if (lane >= lanes) this.r.fail(`lane index ${lane} out of range (${lanes} lanes)`, at);
  }

  /** decodes a function body's instructions up to and including its final `end` */
  private expr(localCount: number): void {
    const r = this.r;
    const counts = this.counts;
    // innermost last: the opcode that opened each enclosing block (the function body counts as a block)
    const blocks: number[] = [BLOCK];
    while (blocks.length > 0) {
      const at = r.pos;
      const op = r.byte();
      counts.total++;
      if (op >= 0x45 && op <= 0xbf) continue; // numeric ops: no immediates
      switch (op) {
        case 0x00: case 0x01: case 0x0f: case 0x1a: case 0x1b: break; // unreachable nop return drop select
        case 0x02: case 0x03: case 0x04: this.blockType(); blocks.push(op); break;
        case ELSE:
          if (blocks[blocks.length - 1] !== IF) r.fail("else without a matching if", at);
          blocks[blocks.length - 1] = ELSE;
          break;
        case 0x0b: blocks.pop(); break;
        case 0x0c: case 0x0d: this.label(blocks.length); break; // br br_if
        case 0x0e: // br_table
          for (let n = r.count() + 1; n > 0; n--) this.label(blocks.length);
          break;
        case 0x10: this.funcIndex(); break;
        case 0x11: this.typeIndex(); this.tableIndex(); break; // call_indirect
        case 0x12: this.use("tail-call"); this.funcIndex(); break;
        case 0x13: this.use("tail-call"); this.typeIndex(); this.tableIndex(); break;
        case 0x1c: { // select with explicit types
          this.use("reference-types");
          const n = r.u32();
          if (n !== 1) r.fail(`typed select must list exactly 1 type, got ${n}`, at);
          this.valType();
          break;
        }
        case 0x20: case 0x21: case 0x22: this.index(localCount, "local"); break;
        case 0x23: case 0x24: this.index(this.globalMutable.length, "global"); break;
        case 0x25: case 0x26: this.use("reference-types"); this.tableIndex(); break; // table.get/set
        case 0x3f: this.memoryIndex(); break; // memory.size
        case 0x40: counts.memoryGrow++; this.memoryIndex(); break;
        case 0x41: r.signed(32); break;
        case 0x42: r.signed(64); break;
        case 0x43: r.skip(4); break;
        case 0x44: r.skip(8); break;
        case 0xc0: case 0xc1: case 0xc2: case 0xc3: case 0xc4: this.use("sign-ext"); break;
        case 0xd0: this.use("reference-types"); this.heapType(); break;
        case 0xd1: this.use("reference-types"); break;
        case 0xd2: this.use("reference-types"); this.funcIndex(); break;
        case 0xfc: this.miscOp(at); break;
        case 0xfd: this.simdOp(at); break;
        case 0xfe: this.atomicOp(at); break;
        default:
          if (op >= 0x28 && op <= 0x3e) this.memarg(); // loads and stores
          else r.fail(`unknown or unsupported opcode 0x${hex(op)}`, at);
      }
    }
  }

  private label(depth: number): void {
    const at = this.r.pos;
    const label = this.r.u32();
    if (label >= depth) this.r.fail(`branch to label ${label} but only ${depth} blocks are open`, at);
  }

  /** 0xFC prefix: saturating truncation, bulk memory, table ops */
  private miscOp(at: number): void {
    const sub = this.r.u32();
    if (sub <= 7) return this.use("nontrapping-fptoint");
    switch (sub) {
      case 8: // memory.init
        this.use("bulk-memory");
        this.dataIndex(at);
        this.memoryIndex();
        return;
      case 9: this.use("bulk-memory"); this.dataIndex(at); return; // data.drop
      case 10: this.use("bulk-memory"); this.memoryIndex(); this.memoryIndex(); return; // memory.copy
      case 11: this.use("bulk-memory"); this.memoryIndex(); return; // memory.fill
      case 12: this.use("bulk-memory"); this.index(this.elemCount, "element segment"); this.tableIndex(); return;
      case 13: this.use("bulk-memory"); this.index(this.elemCount, "element segment"); return; // elem.drop
      case 14: this.use("bulk-memory"); this.tableIndex(); this.tableIndex(); return; // table.copy
      case 15: case 16: case 17: this.use("reference-types"); this.tableIndex(); return; // table.grow/size/fill
      default: this.r.fail(`unknown or unsupported opcode 0xfc ${sub}`, at);
    }
  }

  private dataIndex(at: number): void {
    if (this.dataCount === null) this.r.fail("memory.init/data.drop need a datacount section", at);
    this.index(this.dataCount, "data segment");
  }

  /** 0xFD prefix: simd128, and relaxed-simd at 0x100..0x113 */
  private simdOp(at: number): void {
    const r = this.r;
    const sub = r.u32();
    if (sub >= 0x100 && sub <= 0x113) {
      this.use("relaxed-simd");
      this.features.add("simd128"); // relaxed-simd builds on simd128
      return;
    }
    if (sub > 0xff || SIMD_RESERVED.has(sub)) r.fail(`unknown or unsupported opcode 0xfd ${sub}`, at);
    this.use("simd128");
    if (sub <= 0x0b || sub === 0x5c || sub === 0x5d) {
      this.memarg();
    } else if (sub === 0x0c) {
      r.skip(16); // v128.const
    } else if (sub === 0x0d) {
      for (let i = 0; i < 16; i++) this.lane(32); // i8x16.shuffle
    } else if (SIMD_LANE_OPS[sub] !== undefined) {
      this.lane(SIMD_LANE_OPS[sub]);
    } else if (SIMD_MEM_LANE_OPS[sub] !== undefined) {
      this.memarg();
      this.lane(SIMD_MEM_LANE_OPS[sub]);
    }
  }

  /** 0xFE prefix: atomics */
  private atomicOp(at: number): void {
    const r = this.r;
    const sub = r.u32();
    this.use("threads");
    if (sub === 0x03) {
      if (r.byte() !== 0) r.fail("atomic.fence needs a zero byte", at); // atomic.fence
    } else if (sub <= 0x02 || (sub >= 0x10 && sub <= 0x4e)) {
      this.memarg();
    } else {
      r.fail(`unknown or unsupported opcode 0xfe ${sub}`, at);
    }
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

export function inspectWasm(bytes: Uint8Array, source = "<bytes>"): WasmInfo {
  return new Decoder(bytes, source).decode();
}

/**
 * Parses and minimally validates manifest JSON: every field a host needs to find the buffers
 * (flavour, weights, inputs, outputs) must be present and consistent.
 */
export function parseManifest(json: string | Uint8Array, source = "<manifest>"): Manifest {
  const where = `bad manifest (${source})`;
  let value: unknown;
  try {
    const text = typeof json === "string" ? json : new TextDecoder("utf-8", { fatal: true }).decode(json);
    value = JSON.parse(text);
  } catch (e) {
    fail(`${where}: not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!isObject(value)) fail(`${where}: not a JSON object`);
  if (value.format !== "teenygrad") fail(`${where}: format is ${JSON.stringify(value.format)}, expected "teenygrad"`);
  if (value.version !== 1) fail(`${where}: unsupported version ${JSON.stringify(value.version)} (this host reads version 1)`);
  if (value.flavour !== "reactor" && value.flavour !== "wasi") fail(`${where}: flavour must be "reactor" or "wasi", got ${JSON.stringify(value.flavour)}`);
  const weights = value.weights;
  if (!isObject(weights)) fail(`${where}: missing "weights" object`);
  checkCount(weights.offset, `${where}: weights.offset`);
  checkCount(weights.bytes, `${where}: weights.bytes`);
  if (typeof weights.embedded !== "boolean") fail(`${where}: weights.embedded must be true or false`);
  checkSlots(weights.tensors, "weights.tensors", where);
  // what inspect, export-c and the footprint read
  const { arena, memory } = value;
  if (!isObject(arena)) fail(`${where}: missing "arena" object`);
  for (const field of ["offset", "bytes", "lowerBound", "greedyBaseline"]) checkCount(arena[field], `${where}: arena.${field}`);
  if (!isObject(memory)) fail(`${where}: missing "memory" object`);
  checkCount(memory.pages, `${where}: memory.pages`);
  checkCount(memory.bytes, `${where}: memory.bytes`);
  if (memory.bytes !== (memory.pages as number) * 65536) fail(`${where}: memory.bytes ${memory.bytes} is not memory.pages ${memory.pages} × 65536`);
  checkSlots(value.inputs, "inputs", where);
  checkSlots(value.outputs, "outputs", where);
  if (value.state !== undefined) checkState(value.state, value.outputs, where);
  if (value.training !== undefined) checkTraining(value.training, where);
  return value as unknown as Manifest;
}

/** a streaming model's state: slots, each naming the output that feeds it */
function checkState(state: unknown, outputs: TensorSlot[], where: string): void {
  checkSlots(state, "state", where);
  (state as (TensorSlot & { output?: unknown })[]).forEach((s, i) => {
    const output = outputs.find((o) => o.name === s.output);
    if (!output || output.shape.join() !== s.shape.join() || output.dtype !== s.dtype) fail(`${where}: state[${i}] "${s.name}": output ${JSON.stringify(s.output)} is not an output of its shape and dtype`);
  });
}

/** the training section of a blob from compileTraining: what loadTrainingBlob reads */
function checkTraining(training: unknown, where: string): void {
  if (!isObject(training)) fail(`${where}: "training" must be an object`);
  for (const list of ["inputs", "outputs", "parameters", "optimizerState"]) checkSlots(training[list], `training.${list}`, where);
  (training.parameters as Record<string, unknown>[]).forEach((p, i) => {
    if (typeof p.trainable !== "boolean") fail(`${where}: training.parameters[${i}] "${p.name}": trainable must be true or false`);
  });
  const { control } = training;
  if (!isObject(control)) fail(`${where}: missing "training.control" object`);
  checkCount(control.step, `${where}: training.control.step`);
  checkCount(control.lr, `${where}: training.control.lr`);
  if (!isObject(training.optimizer)) fail(`${where}: "training.optimizer" must be an object`);
}

function checkSlots(slots: unknown, list: string, where: string): asserts slots is TensorSlot[] {
  if (!Array.isArray(slots)) fail(`${where}: "${list}" must be an array`);
  const names = new Set<string>();
  slots.forEach((slot: unknown, i) => {
    const at = `${where}: ${list}[${i}]`;
    if (!isObject(slot)) fail(`${at} must be an object`);
    if (typeof slot.name !== "string" || slot.name === "") fail(`${at} has no name`);
    const named = `${at} "${slot.name}"`;
    if (names.has(slot.name)) fail(`${named}: duplicate name`);
    names.add(slot.name);
    if (typeof slot.dtype !== "string" || !isDType(slot.dtype)) fail(`${named}: unknown dtype ${JSON.stringify(slot.dtype)}`);
    if (!Array.isArray(slot.shape) || !slot.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${named}: shape must be an array of non-negative integers, got ${JSON.stringify(slot.shape)}`);
    }
    checkCount(slot.offset, `${named}: offset`);
    checkCount(slot.bytes, `${named}: bytes`);
    const expected = numel(slot.shape) * DTYPES[slot.dtype].bytes;
    if (slot.bytes !== expected) fail(`${named}: bytes is ${slot.bytes} but ${slot.dtype}[${slot.shape.join(", ")}] takes ${expected}`);
    if (slot.quantization !== undefined) {
      const q = slot.quantization;
      const valid = isObject(q) && typeof q.scale === "number" && q.scale > 0 && Number.isFinite(q.scale) && Number.isInteger(q.zeroPoint) && (q.zeroPoint as number) >= -128 && (q.zeroPoint as number) <= 127;
      if (!valid || slot.dtype !== "int8") fail(`${named}: quantization must be an int8 slot's { scale > 0, zeroPoint in [-128, 127] }, got ${JSON.stringify(q)} on ${slot.dtype}`);
    }
  });
}

function checkCount(v: unknown, what: string): void {
  if (!Number.isSafeInteger(v) || (v as number) < 0) fail(`${what} must be a non-negative integer, got ${JSON.stringify(v)}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
