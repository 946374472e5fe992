import { fail } from "../errors.js";
import { DTYPES, type DType } from "../ir/dtype.js";
import { broadcastStrides } from "../ir/shape.js";
import { arg, isLoopType, LOOP_TYPES, type LoopExpr, type LoopType } from "../ops/loop-ir.js";
import { getOp } from "../ops/registry.js";
import { collapse } from "./elementwise.js";
import type { EntryProgram, EntryStatement } from "./emit.js";
import { WASI_EXIT } from "./emit.js";
import { LIBRARY_EXIT, LIBRARY_TRANSFER, loopHelper } from "./library.js";
import { concat, encodeName, EXTERNAL, relocatedBody, section, SECTION, sleb, uleb, VALTYPE, vec, type FuncType, type LibraryIndex, type ValType } from "./wasm.js";

type Loop = Extract<EntryStatement, { kind: "loop" }>;

/** Thrown when an entry uses something the direct builder does not emit: the caller compiles it with asc. */
export class NeedsAsc extends Error {}

/**
 * Builds a model's module from the kernel library: run() (and for WASI _start) as straight-line calls
 * with constant arguments and the fused element-wise loops, encoded directly as WebAssembly; only the
 * library functions (and imports, globals, types) the entry reaches are kept, renumbered. The memory,
 * globals and exports are patched afterwards like asc's output (build.ts).
 */
export function linkEntry(lib: LibraryIndex, program: EntryProgram, opts: { simd: boolean }): Uint8Array {
  const kernels = libraryKernels(lib);
  // the entry's own functions follow the kept library functions: run, then _start
  const own = { run: 0, start: 1 };
  const run = new Body();
  encodeStatements(program.run, run, kernels, opts);
  run.constant("i32", 0);

  let start: Body | null = null;
  if (program.wasi) {
    const b = (start = new Body());
    const status = b.local("i32");
    const exit = kernels.kernel(LIBRARY_EXIT), transfer = kernels.kernel(LIBRARY_TRANSFER);
    const transferOrExit = (write: boolean, [ptr, bytes]: [number, number], code: number) => {
      b.constant("i32", write ? 1 : 0).constant("i32", ptr).constant("i32", bytes).callLibrary(transfer);
      b.bytes(0x45, 0x04, 0x40).constant("i32", code).callLibrary(exit).bytes(0x0b); // if (!transfer(...)) exit(code)
    };
    program.wasi.inputs.forEach((t) => transferOrExit(false, t, WASI_EXIT.shortRead));
    b.callOwn(own.run).localSet(status).localGet(status);
    b.bytes(0x04, 0x40).constant("i32", WASI_EXIT.status).localGet(status).bytes(0x6a).callLibrary(exit).bytes(0x0b);
    program.wasi.outputs.forEach((t) => transferOrExit(true, t, WASI_EXIT.shortWrite));
  }
  return assembleModule(lib, [
    { params: [], results: ["i32"], body: run, export: "run" },
    ...(start ? [{ params: [], results: [], body: start, export: "_start" }] : []),
  ]);
}

/** The library's exported functions by name, and their types. */
export interface LibraryKernels {
  kernel(name: string): number;
  typeOf(fn: number): FuncType;
}

export function libraryKernels(lib: LibraryIndex): LibraryKernels {
  return {
    kernel(name) {
      const e = lib.exports.get(name);
      if (!e || e.kind !== EXTERNAL.function) fail(`internal: the kernel library has no function ${name}`);
      return e.index;
    },
    typeOf: (fn) => lib.types[fn < lib.imports.length ? lib.imports[fn].type : lib.functions[fn - lib.imports.length].type],
  };
}

/**
 * Appends entry statements to a function body: kernel calls with constant arguments (a status kernel's
 * non-zero result returns its status), element-wise loops and guarded blocks.
 */
export function encodeStatements(statements: EntryStatement[], run: Body, kernels: LibraryKernels, opts: { simd: boolean }): void {
  const statement = (s: EntryStatement): void => {
    if (s.kind === "loop") {
      encodeLoop(s, run, { simd: opts.simd, helper: (n) => kernels.kernel(loopHelper(n)), kernel: kernels.kernel });
      return;
    }
    if (s.kind === "guarded") {
      // if (every condition's bool byte is as `when` says) { body }
      s.conditions.forEach((c, i) => {
        run.constant("i32", c.ptr).bytes(0x2d, 0, 0); // i32.load8_u
        if (!c.when) run.bytes(0x45); // i32.eqz
        if (i) run.bytes(0x71); // i32.and
      });
      run.bytes(0x04, 0x40);
      s.body.forEach(statement);
      run.bytes(0x0b);
      return;
    }
    const fn = kernels.kernel(s.fn);
    const type = kernels.typeOf(fn);
    if (type.params.length !== s.args.length) fail(`internal: ${s.fn} takes ${type.params.length} arguments, the entry passes ${s.args.length}`);
    s.args.forEach((a, i) => run.constant(type.params[i], a));
    run.callLibrary(fn);
    if (s.status !== undefined) run.bytes(0x04, 0x40).constant("i32", s.status).bytes(0x0f, 0x0b); // if (result) return status
    else if (type.results.length) run.bytes(0x1a); // drop
  };
  statements.forEach(statement);
}

/** A function of the entry: `callOwn(k)` calls the k-th of the list given to assembleModule. */
export interface OwnFunction { params: ValType[]; results: ValType[]; body: Body; export?: string }

/**
 * The module of the entry's own functions and the library functions (and imports, globals, types) they
 * reach, renumbered; the library's memory and non-function exports are kept.
 */
export function assembleModule(lib: LibraryIndex, ownFunctions: OwnFunction[]): Uint8Array {
  // --- what the entry reaches in the library ---
  const reached = new Set<number>();
  const visit = (fn: number) => {
    if (reached.has(fn)) return;
    reached.add(fn);
    if (fn >= lib.imports.length) for (const r of lib.functions[fn - lib.imports.length].refs) if (r.space === "function") visit(r.index);
  };
  for (const f of ownFunctions) f.body.libraryCalls.forEach(visit);
  const keptFns = [...reached].sort((a, b) => a - b);
  const keptImports = keptFns.filter((f) => f < lib.imports.length);
  const keptBodies = keptFns.filter((f) => f >= lib.imports.length);
  const fnIndex = new Map(keptFns.map((f, i) => [f, i]));
  const ownBase = keptFns.length;

  const globalsUsed = new Set<number>();
  const typesUsed = new Set<number>();
  for (const f of keptImports) typesUsed.add(lib.imports[f].type);
  for (const f of keptBodies) {
    const fn = lib.functions[f - lib.imports.length];
    typesUsed.add(fn.type);
    for (const r of fn.refs) {
      if (r.space === "global") globalsUsed.add(r.index);
      else if (r.space === "type") typesUsed.add(r.index);
    }
  }
  const exports = [...lib.exports].filter(([, e]) => e.kind !== EXTERNAL.function);
  for (const [name, e] of exports) {
    if (e.kind === EXTERNAL.global) globalsUsed.add(e.index);
    else if (e.kind !== EXTERNAL.memory) fail(`internal: the kernel library exports ${name} of kind ${e.kind}, which the linker does not handle`);
  }
  const keptTypes = [...typesUsed].sort((a, b) => a - b);
  const typeIndex = new Map(keptTypes.map((t, i) => [t, i]));
  const newTypes: Uint8Array[] = [];
  const typeFor = (params: ValType[], results: ValType[]): number => {
    const raw = concat([[0x60], vec(params.map((p) => [VALTYPE[p]])), vec(results.map((r) => [VALTYPE[r]]))]);
    const known = keptTypes.findIndex((t) => sameBytes(lib.types[t].raw, raw));
    if (known >= 0) return known;
    const added = newTypes.findIndex((t) => sameBytes(t, raw));
    return keptTypes.length + (added >= 0 ? added : newTypes.push(raw) - 1);
  };
  const keptGlobals = [...globalsUsed].sort((a, b) => a - b);
  const globalIndex = new Map(keptGlobals.map((g, i) => [g, i]));

  const ownFns = ownFunctions.map((f) => ({ ...f, type: typeFor(f.params, f.results) }));
  const resolve = { library: (f: number) => fnIndex.get(f)!, own: (k: number) => ownBase + k };
  const renumber = (space: "function" | "global" | "type", index: number): number =>
    space === "function" ? fnIndex.get(index)! : space === "global" ? globalIndex.get(index)! : typeIndex.get(index)!;

  const sections: Uint8Array[] = [];
  sections.push(section(SECTION.type, vec([...keptTypes.map((t) => lib.types[t].raw), ...newTypes])));
  if (keptImports.length) sections.push(section(SECTION.import, vec(keptImports.map((f) => concat([lib.imports[f].raw, [EXTERNAL.function], uleb(typeIndex.get(lib.imports[f].type)!)])))));
  sections.push(section(SECTION.function, vec([...keptBodies.map((f) => uleb(typeIndex.get(lib.functions[f - lib.imports.length].type)!)), ...ownFns.map((f) => uleb(f.type))])));
  if (lib.memory) sections.push(section(SECTION.memory, lib.memory));
  if (keptGlobals.length) sections.push(section(SECTION.global, vec(keptGlobals.map((g) => lib.globals[g]))));
  const exportEntry = (name: string, kind: number, index: number) => concat([encodeName(name), [kind], uleb(index)]);
  sections.push(section(SECTION.export, vec([
    ...exports.map(([name, e]) => exportEntry(name, e.kind, e.kind === EXTERNAL.global ? globalIndex.get(e.index)! : e.index)),
    ...ownFns.flatMap((f, k) => (f.export ? [exportEntry(f.export, EXTERNAL.function, resolve.own(k))] : [])),
  ])));
  sections.push(section(SECTION.code, vec([
    ...keptBodies.map((f) => relocatedBody(lib.functions[f - lib.imports.length], renumber)),
    ...ownFns.map((f) => f.body.encode(resolve)),
  ])));
  return concat([[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], ...sections]);
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

type Part = number | { local: number } | { library: number } | { own: number };

/**
 * One function body being written: instruction bytes, with locals and callees left symbolic until the
 * module's index spaces are known (locals are grouped by type when encoded).
 */
export class Body {
  private parts: Part[] = [];
  private localTypes: ValType[] = [];
  readonly libraryCalls = new Set<number>();

  /** `params`: how many parameters the function takes (they come before its locals) */
  constructor(private readonly params = 0) {}

  paramGet(i: number): this {
    if (i >= this.params) fail(`internal: parameter ${i} of a ${this.params}-parameter function`);
    this.parts.push(0x20, ...uleb(i));
    return this;
  }
  local(type: ValType): number {
    return this.localTypes.push(type) - 1;
  }
  bytes(...b: number[]): this {
    this.parts.push(...b);
    return this;
  }
  localGet(l: number): this {
    this.parts.push(0x20, { local: l });
    return this;
  }
  localSet(l: number): this {
    this.parts.push(0x21, { local: l });
    return this;
  }
  callLibrary(fn: number): this {
    this.libraryCalls.add(fn);
    this.parts.push(0x10, { library: fn });
    return this;
  }
  callOwn(k: number): this {
    this.parts.push(0x10, { own: k });
    return this;
  }
  /** A constant of a parameter's type; integers wrap like AssemblyScript's conversions of a literal. */
  constant(type: ValType, value: number): this {
    if (type === "i32") return this.bytes(0x41, ...sleb(Number.isFinite(value) ? BigInt.asIntN(32, BigInt(Math.trunc(value))) : 0n));
    if (type === "i64") return this.bytes(0x42, ...sleb(Number.isFinite(value) ? BigInt.asIntN(64, BigInt(Math.trunc(value))) : 0n));
    if (type === "f32") return this.bytes(0x43, ...new Uint8Array(new Float32Array([value]).buffer));
    if (type === "f64") return this.bytes(0x44, ...new Uint8Array(new Float64Array([value]).buffer));
    return fail(`internal: kernel parameter of type ${type}`);
  }
  /** The size-prefixed body of the code section. */
  encode(resolve: { library: (f: number) => number; own: (k: number) => number }): Uint8Array {
    const order = (["i32", "i64", "f32", "f64", "v128"] as ValType[]).map((t) => this.localTypes.flatMap((lt, i) => (lt === t ? [i] : [])));
    const slot = new Map(order.flat().map((l, i) => [l, this.params + i]));
    const groups = order.filter((g) => g.length);
    const out: number[] = [...uleb(groups.length), ...groups.flatMap((g) => [...uleb(g.length), VALTYPE[this.localTypes[g[0]]]])];
    for (const p of this.parts) {
      if (typeof p === "number") out.push(p);
      else if ("local" in p) out.push(...uleb(slot.get(p.local)!));
      else if ("library" in p) out.push(...uleb(resolve.library(p.library)));
      else out.push(...uleb(resolve.own(p.own)));
    }
    out.push(0x0b);
    return concat([uleb(out.length), out]);
  }
}

// --- element-wise loops ---------------------------------------------------------------------------

/** text-format names of the instructions loop lowerings use, and their encodings */
const SIMPLE_OPS: Record<string, number> = {
  "i32.eqz": 0x45, "i32.eq": 0x46, "i32.ne": 0x47, "i32.lt_s": 0x48, "i32.lt_u": 0x49, "i32.gt_s": 0x4a, "i32.gt_u": 0x4b,
  "i32.le_s": 0x4c, "i32.le_u": 0x4d, "i32.ge_s": 0x4e, "i32.ge_u": 0x4f,
  "f32.eq": 0x5b, "f32.ne": 0x5c, "f32.lt": 0x5d, "f32.gt": 0x5e, "f32.le": 0x5f, "f32.ge": 0x60,
  "i32.clz": 0x67, "i32.ctz": 0x68, "i32.popcnt": 0x69, "i32.add": 0x6a, "i32.sub": 0x6b, "i32.mul": 0x6c, "i32.div_s": 0x6d, "i32.div_u": 0x6e,
  "i32.rem_s": 0x6f, "i32.rem_u": 0x70, "i32.and": 0x71, "i32.or": 0x72, "i32.xor": 0x73, "i32.shl": 0x74, "i32.shr_s": 0x75, "i32.shr_u": 0x76,
  "f32.abs": 0x8b, "f32.neg": 0x8c, "f32.ceil": 0x8d, "f32.floor": 0x8e, "f32.trunc": 0x8f, "f32.nearest": 0x90, "f32.sqrt": 0x91,
  "f32.add": 0x92, "f32.sub": 0x93, "f32.mul": 0x94, "f32.div": 0x95, "f32.min": 0x96, "f32.max": 0x97, "f32.copysign": 0x98,
  "f32.convert_i32_s": 0xb2, "f32.convert_i32_u": 0xb3, "i32.reinterpret_f32": 0xbc, "f32.reinterpret_i32": 0xbe,
  "i32.extend8_s": 0xc0, "i32.extend16_s": 0xc1, select: 0x1b,
};
const SATURATING_OPS: Record<string, number> = { "i32.trunc_sat_f32_s": 0, "i32.trunc_sat_f32_u": 1 };
const SIMD_OPS: Record<string, number> = {
  "f32x4.splat": 0x13, "f32x4.ceil": 0x67, "f32x4.floor": 0x68, "f32x4.trunc": 0x69, "f32x4.nearest": 0x6a,
  "f32x4.abs": 0xe0, "f32x4.neg": 0xe1, "f32x4.sqrt": 0xe3, "f32x4.add": 0xe4, "f32x4.sub": 0xe5, "f32x4.mul": 0xe6, "f32x4.div": 0xe7,
  "f32x4.min": 0xe8, "f32x4.max": 0xe9,
};

function instruction(name: string): number[] {
  if (name in SIMPLE_OPS) return [SIMPLE_OPS[name]];
  if (name in SATURATING_OPS) return [0xfc, ...uleb(SATURATING_OPS[name])];
  if (name in SIMD_OPS) return [0xfd, ...uleb(SIMD_OPS[name])];
  return fail(`internal: loop lowering uses instruction ${name}, which the encoder does not know`);
}

/**
 * One element-wise loop nest, the same nest emitElementwise writes in AssemblyScript:
 * collapsed dims, each operand's row pointer per outer iteration, the innermost dim in f32x4 lanes (SIMD
 * builds, float32 throughout, every op with a vector form, at least 4 wide) and then a scalar tail (left out
 * when the lanes cover the row).
 * Written into run() (`b`), whose status a fault (integer division by zero) returns. Operands and steps of
 * other types than f32 and integers up to 32 bits need asc.
 */
function encodeLoop(loop: Loop, b: Body, opts: { simd: boolean; helper: (name: string) => number; kernel: (name: string) => number }): void {
  const operands = [...loop.inputs, loop.out];
  const asOf = (dtype: DType) => DTYPES[dtype].as;
  const other = operands.find((v) => !isLoopType(asOf(v.dtype))) ?? loop.steps.find((s) => !isLoopType(asOf(s.dtype)));
  if (other) throw new NeedsAsc(`an element-wise loop over ${other.dtype}`);
  const types = operands.map((v) => asOf(v.dtype) as LoopType);
  const bytes = types.map((t) => LOOP_TYPES[t].bytes);
  const float = types.every((t) => t === "f32") && loop.steps.every((s) => s.dtype === "float32");

  const shape = loop.out.shape;
  const { dims, strides } = collapse(shape, operands.map((v) => broadcastStrides(v.shape, shape)));
  const rank = dims.length, inner = dims[rank - 1], outK = loop.inputs.length;
  const lowering = (op: string) => getOp(op).elementwise?.loop;
  const vectorizable = float && opts.simd && inner >= 4 && loop.steps.every((s) => lowering(s.op)?.vector);

  // the scalar steps first: a step asc must compile stops here, before anything is written
  const valueTypes = types.slice(0, outK);
  const scalarSteps = loop.steps.map((s) => {
    const t = valueTypes[s.args[s.args.length - 1]], out = asOf(s.dtype) as LoopType;
    const args = s.args.map((_, i) => arg(i));
    const expr = lowering(s.op)?.scalar(args, s.attrs, t, out);
    if (!expr) throw new NeedsAsc(`element-wise ${s.op} over ${t} is not built directly yet`);
    valueTypes.push(out);
    return { expr, out, fault: lowering(s.op)?.fault?.(args, t) ?? null };
  });

  const counters = dims.slice(0, -1).map(() => b.local("i32"));
  const j = b.local("i32");
  const innerStride = strides.map((st) => st[rank - 1]);
  // each operand's constant address is the memory offset of its loads and stores; a row local holds the
  // outer dims' part of the address, for operands that move along them
  const rows = operands.map((_, k) => (counters.some((_, d) => strides[k][d]) ? b.local("i32") : null));
  /** do { body; advance } while (cond): every loop here runs at least once (trip counts are constants) */
  const doWhile = (body: () => void, advance: () => void, cond: () => void) => {
    b.bytes(0x03, 0x40);
    body();
    advance();
    cond();
    b.bytes(0x0d, 0, 0x0b);
  };
  const increment = (l: number, by: number) => b.localGet(l).constant("i32", by).bytes(0x6a).localSet(l);
  /** the variable part of operand k's address at element j */
  const address = (k: number) => {
    const row = rows[k];
    if (row !== null) b.localGet(row);
    if (innerStride[k]) {
      b.localGet(j);
      if (bytes[k] > 1) b.constant("i32", Math.log2(bytes[k])).bytes(0x74);
      if (row !== null) b.bytes(0x6a);
    } else if (row === null) b.constant("i32", 0);
  };
  /** alignment (log2) and operand k's constant address as the offset */
  const memarg = (k: number, log2: number) => [log2, ...uleb(operands[k].ptr)];
  const scalarLoad = (k: number) => {
    address(k);
    const signed = LOOP_TYPES[types[k]].signed;
    if (types[k] === "f32") b.bytes(0x2a, ...memarg(k, 2));
    else if (bytes[k] === 4) b.bytes(0x28, ...memarg(k, 2));
    else if (bytes[k] === 2) b.bytes(signed ? 0x2e : 0x2f, ...memarg(k, 1));
    else b.bytes(signed ? 0x2c : 0x2d, ...memarg(k, 0));
  };
  /** stores the value on the stack at the output's address, pushed before it */
  const scalarStore = () => {
    const t = types[outK];
    b.bytes(...(t === "f32" ? [0x38, ...memarg(outK, 2)] : bytes[outK] === 4 ? [0x36, ...memarg(outK, 2)] : bytes[outK] === 2 ? [0x3b, ...memarg(outK, 1)] : [0x3a, ...memarg(outK, 0)]));
  };
  let emitValue = (_v: number): void => {};
  /** a step's lowering, its arguments being the loop's values `args` */
  const emit = (e: LoopExpr, args: number[]): void => {
    if ("arg" in e) emitValue(args[e.arg]);
    else if ("f32" in e) b.constant("f32", e.f32);
    else if ("i32" in e) b.constant("i32", e.i32);
    else if ("helper" in e) {
      e.args.forEach((x) => emit(x, args));
      b.callLibrary(opts.helper(`${e.helper}${e.act ?? ""}${e.form}`));
    } else if ("kernel" in e) {
      e.args.forEach((x) => emit(x, args));
      b.callLibrary(opts.kernel(e.kernel));
    } else if ("cond" in e) {
      emit(e.cond, args);
      b.bytes(0x04, VALTYPE[e.type]);
      emit(e.then, args);
      b.bytes(0x05);
      emit(e.otherwise, args);
      b.bytes(0x0b);
    } else {
      e.args.forEach((x) => emit(x, args));
      b.bytes(...instruction(e.op));
    }
  };

  /**
   * One element of the loop: each input loaded, each step computed, the last step stored. A value used once
   * is computed where it is used (everything here is pure); a value used more often lives in a local.
   */
  const body = (vector: boolean) => () => {
    const exprs = loop.steps.map((s, i) => (vector ? lowering(s.op)!.vector!(s.args.map((_, n) => arg(n)), s.attrs) : scalarSteps[i].expr));
    const uses = new Array<number>(outK + loop.steps.length).fill(0);
    const count = (e: LoopExpr, args: number[]): void => {
      if ("arg" in e) uses[args[e.arg]]++;
      else if ("args" in e) e.args.forEach((x) => count(x, args));
    };
    exprs.forEach((e, i) => count(e, loop.steps[i].args));
    if (!vector) scalarSteps.forEach((s, i) => s.fault && count(s.fault.when, loop.steps[i].args));
    uses[uses.length - 1]++;
    const locals = new Map<number, number>();
    const valueType = (v: number): ValType => (vector ? "v128" : (v < outK ? types[v] : scalarSteps[v - outK].out) === "f32" ? "f32" : "i32");
    const define = (v: number): void => {
      if (v < outK) {
        if (!vector) scalarLoad(v);
        else if (innerStride[v]) {
          address(v);
          b.bytes(0xfd, 0x00, ...memarg(v, 4));
        } else {
          address(v);
          b.bytes(0x2a, ...memarg(v, 2), 0xfd, SIMD_OPS["f32x4.splat"]);
        }
        return;
      }
      emit(exprs[v - outK], loop.steps[v - outK].args);
    };
    const value = (v: number): void => {
      const l = locals.get(v);
      if (l === undefined) define(v);
      else b.localGet(l);
    };
    emitValue = value;
    for (let v = 0; v < uses.length; v++) {
      const fault = !vector && v >= outK ? scalarSteps[v - outK].fault : null;
      if (fault) {
        emit(fault.when, loop.steps[v - outK].args);
        b.bytes(0x04, 0x40).constant("i32", fault.status).bytes(0x0f, 0x0b); // if (when) return status
      }
      if (uses[v] < 2) continue;
      define(v);
      const l = b.local(valueType(v));
      b.localSet(l);
      locals.set(v, l);
    }
    address(outK);
    value(uses.length - 1);
    if (vector) b.bytes(0xfd, 0x0b, ...memarg(outK, 4));
    else scalarStore();
  };

  const nest = (d: number) => {
    if (d < counters.length) {
      b.constant("i32", 0).localSet(counters[d]);
      doWhile(() => nest(d + 1), () => increment(counters[d], 1), () => b.localGet(counters[d]).constant("i32", dims[d]).bytes(0x49));
      return;
    }
    operands.forEach((_, k) => {
      const row = rows[k];
      if (row === null) return;
      let terms = 0;
      counters.forEach((c, cd) => {
        if (!strides[k][cd]) return;
        b.localGet(c).constant("i32", strides[k][cd] * bytes[k]).bytes(0x6c);
        if (terms++) b.bytes(0x6a);
      });
      b.localSet(row);
    });
    b.constant("i32", 0).localSet(j);
    // j + 4 <= inner, then j < inner: the lanes run inner / 4 times, the scalar tail what is left (maybe nothing)
    const lanes = vectorizable ? Math.floor(inner / 4) * 4 : 0;
    if (lanes) doWhile(body(true), () => increment(j, 4), () => b.localGet(j).constant("i32", inner - 4).bytes(0x4d));
    if (lanes < inner) doWhile(body(false), () => increment(j, 1), () => b.localGet(j).constant("i32", inner).bytes(0x49));
  };
  nest(0);

}
