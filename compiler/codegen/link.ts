import { fail } from "../errors.js";
import { DTYPES, type DType } from "../ir/dtype.js";
import type { Attrs } from "../ir/graph.js";
import { broadcastStrides } from "../ir/shape.js";
import { getOp } from "../ops/registry.js";
import { collapse } from "./elementwise.js";
import type { EntryProgram, EntryStatement } from "./emit.js";
import { WASI_EXIT } from "./emit.js";
import { LIBRARY_EXIT, LIBRARY_TRANSFER, loopHelper } from "./library.js";

type Binaryen = typeof import("binaryen").default;
type BinaryenModule = import("binaryen").default.Module;
type Loop = Extract<EntryStatement, { kind: "loop" }>;

/** Thrown when an entry uses something the direct builder does not emit: the caller compiles it with asc. */
export class NeedsAsc extends Error {}

/**
 * Builds a model's module from the kernel library: run() (and for WASI _start) as straight-line calls
 * with constant arguments, written directly as WebAssembly with binaryen's module builder; every kernel
 * the entry does not reach is dropped. The memory, globals and exports are patched afterwards like asc's
 * output (build.ts).
 */
export async function linkEntry(library: Uint8Array, program: EntryProgram, opts: { simd: boolean }): Promise<Uint8Array> {
  // loaded on first use, like asc: `teenygrad --help`, `run` and `inspect` need not pay for it
  const { default: binaryen } = await import("binaryen");
  const m = binaryen.readBinary(library);
  try {
    m.setFeatures(binaryen.Features.All);
    const kernels = new Map<string, string>();
    for (const name of exportNames(binaryen, m)) {
      const info = binaryen.getExportInfo(m.getExport(name));
      if (info.kind === binaryen.ExternalFunction) {
        kernels.set(name, info.value);
        m.removeExport(name);
      }
    }
    const fnOf = (name: string) => kernels.get(name) ?? fail(`internal: the kernel library has no function ${name}`);
    const call = (name: string, args: number[]) => {
      const internal = fnOf(name);
      const info = binaryen.getFunctionInfo(m.getFunction(internal));
      const params = binaryen.expandType(info.params);
      if (params.length !== args.length) fail(`internal: ${name} takes ${params.length} arguments, the entry passes ${args.length}`);
      return { ref: m.call(internal, args.map((a, i) => constant(binaryen, m, params[i], a)), info.results), results: info.results };
    };
    let loops = 0;
    const statement = (s: EntryStatement): number => {
      if (s.kind === "loop") {
        const name = `loop${loops++}`;
        buildLoop(binaryen, m, name, s, { simd: opts.simd, helper: (n) => fnOf(loopHelper(n)), kernel: fnOf });
        return m.call(name, [], binaryen.none);
      }
      if (s.kind === "guarded") {
        const holds = s.conditions.map((c) => {
          const flag = m.i32.load8_u(0, 1, m.i32.const(c.ptr));
          return c.when ? m.i32.ne(flag, m.i32.const(0)) : m.i32.eqz(flag);
        });
        return m.if(holds.reduce((a, b) => m.i32.and(a, b)), m.block(null, s.body.map(statement)));
      }
      const c = call(s.fn, s.args);
      if (s.status !== undefined) return m.if(m.i32.ne(c.ref, m.i32.const(0)), m.return(m.i32.const(s.status)));
      return c.results === binaryen.none ? c.ref : m.drop(c.ref);
    };
    m.addFunction("run", binaryen.none, binaryen.i32, [], m.block(null, [...program.run.map(statement), m.return(m.i32.const(0))]));
    m.addFunctionExport("run", "run");
    if (program.wasi) {
      const exit = (code: number) => m.call(fnOf(LIBRARY_EXIT), [code], binaryen.none);
      const transfer = (write: boolean, [ptr, bytes]: [number, number], code: number) =>
        m.if(m.i32.eqz(m.call(fnOf(LIBRARY_TRANSFER), [m.i32.const(write ? 1 : 0), m.i32.const(ptr), m.i32.const(bytes)], binaryen.i32)), exit(m.i32.const(code)));
      m.addFunction("_start", binaryen.none, binaryen.none, [binaryen.i32], m.block(null, [
        ...program.wasi.inputs.map((t) => transfer(false, t, WASI_EXIT.shortRead)),
        m.local.set(0, m.call("run", [], binaryen.i32)),
        m.if(m.local.get(0, binaryen.i32), exit(m.i32.add(m.i32.const(WASI_EXIT.status), m.local.get(0, binaryen.i32)))),
        ...program.wasi.outputs.map((t) => transfer(true, t, WASI_EXIT.shortWrite)),
      ]));
      m.addFunctionExport("_start", "_start");
    }
    m.runPasses(["remove-unused-module-elements"]);
    if (!m.validate()) fail("internal: the module built from the kernel library does not validate");
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

function exportNames(binaryen: Binaryen, m: BinaryenModule): string[] {
  const names: string[] = [];
  for (let i = 0; i < m.getNumExports(); i++) names.push(binaryen.getExportInfo(m.getExportByIndex(i)).name);
  return names;
}

/** An argument as the parameter's type; integers wrap like AssemblyScript's conversions of a literal. */
function constant(binaryen: Binaryen, m: BinaryenModule, type: number, value: number): number {
  if (type === binaryen.i32) return m.i32.const(Number.isFinite(value) ? Number(BigInt.asIntN(32, BigInt(Math.trunc(value)))) : 0);
  if (type === binaryen.f32) return m.f32.const(Math.fround(value));
  if (type === binaryen.f64) return m.f64.const(value);
  if (type === binaryen.i64) {
    const v = BigInt.asUintN(64, BigInt(Math.trunc(value)));
    return m.i64.const(Number(v & 0xffffffffn) | 0, Number(v >> 32n) | 0);
  }
  return fail(`internal: kernel parameter of binaryen type ${type}`);
}

/** An element-wise op's scalar and (optional) f32x4 forms on binaryen expressions, matching its AssemblyScript templates. */
interface LoopOp {
  scalar(args: number[], attrs: Attrs): number;
  vector?(args: number[], attrs: Attrs): number;
}

function loopOps(binaryen: Binaryen, m: BinaryenModule, helper: (name: string) => string): Record<string, LoopOp> {
  const binary = (scalar: (a: number, b: number) => number, vector: (a: number, b: number) => number): LoopOp => ({ scalar: ([a, b]) => scalar(a, b), vector: ([a, b]) => vector(a, b) });
  const unary = (scalar: (a: number) => number, vector: (a: number) => number): LoopOp => ({ scalar: ([a]) => scalar(a), vector: ([a]) => vector(a) });
  const viaHelper = (name: string): LoopOp => ({
    scalar: ([a]) => m.call(helper(`${name}Scalar`), [a], binaryen.f32),
    vector: ([a]) => m.call(helper(`${name}Vec`), [a], binaryen.v128),
  });
  const ops: Record<string, LoopOp> = {
    add: binary(m.f32.add, m.f32x4.add),
    sub: binary(m.f32.sub, m.f32x4.sub),
    mul: binary(m.f32.mul, m.f32x4.mul),
    div: binary(m.f32.div, m.f32x4.div),
    maximum: binary(m.f32.max, m.f32x4.max),
    minimum: binary(m.f32.min, m.f32x4.min),
    neg: unary(m.f32.neg, m.f32x4.neg),
    abs: unary(m.f32.abs, m.f32x4.abs),
    sqrt: unary(m.f32.sqrt, m.f32x4.sqrt),
    floor: unary(m.f32.floor, m.f32x4.floor),
    ceil: unary(m.f32.ceil, m.f32x4.ceil),
    round: unary(m.f32.nearest, m.f32x4.nearest),
    reciprocal: unary((a) => m.f32.div(m.f32.const(1), a), (a) => m.f32x4.div(m.f32x4.splat(m.f32.const(1)), a)),
    exp: viaHelper("exp"),
    log: viaHelper("log"),
    erf: viaHelper("erf"),
  };
  for (const name of ["relu", "clamp", "leakyRelu", "sigmoid", "tanh", "silu", "hardswish", "gelu", "hardsigmoid", "elu"]) {
    const epilogue = (attrs: Attrs) => getOp(name).epilogue?.(attrs) ?? fail(`internal: activation ${name} has no epilogue`);
    const act = (attrs: Attrs) => epilogue(attrs).act;
    const params = (attrs: Attrs) => [m.f32.const(Math.fround(epilogue(attrs).p0)), m.f32.const(Math.fround(epilogue(attrs).p1))];
    ops[name] = {
      scalar: ([a], attrs) => m.call(helper(`act${act(attrs)}Scalar`), [a, ...params(attrs)], binaryen.f32),
      vector: ([a], attrs) => m.call(helper(`act${act(attrs)}Vec`), [a, ...params(attrs)], binaryen.v128),
    };
  }
  return ops;
}

/** the types a directly built loop holds: f32, and integers up to 32 bits (and bool, as u8) in i32 locals */
const LOOP_TYPES: Record<string, { bytes: number; signed?: boolean }> = {
  f32: { bytes: 4 }, i8: { bytes: 1, signed: true }, u8: { bytes: 1 }, i16: { bytes: 2, signed: true }, u16: { bytes: 2 }, i32: { bytes: 4, signed: true }, u32: { bytes: 4 },
};
const COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"] as const;

/**
 * An integer, comparison, selection or cast step as AssemblyScript computes it: in i32, then wrapped to the
 * step's type (the asc path declares every temporary with its type); undefined where asc is still needed.
 */
function integerStep(binaryen: Binaryen, m: BinaryenModule, op: string, args: number[], attrs: Attrs, t: string, out: string): number | undefined {
  const wrap = (x: number) => {
    const bits = 32 - 8 * LOOP_TYPES[out].bytes;
    if (!bits) return x;
    return LOOP_TYPES[out].signed ? m.i32.shr_s(m.i32.shl(x, m.i32.const(bits)), m.i32.const(bits)) : m.i32.and(x, m.i32.const(2 ** (32 - bits) - 1));
  };
  const signed = LOOP_TYPES[t].signed;
  const [a, b] = args;
  if ((COMPARISONS as readonly string[]).includes(op)) {
    const name = op as (typeof COMPARISONS)[number];
    if (t === "f32") return m.f32[name](a, b);
    return name === "eq" || name === "ne" ? m.i32[name](a, b) : m.i32[`${name}_${signed ? "s" : "u"}`](a, b);
  }
  if (op === "where") return m.select(args[0], args[1], args[2]);
  if (op === "cast") {
    if (out === "u8" && attrs.to === "bool") return t === "f32" ? m.f32.ne(a, m.f32.const(0)) : m.i32.ne(a, m.i32.const(0));
    if (t === "f32") return out === "f32" ? a : undefined; // float to integer saturates in asc's code: not built directly yet
    return out === "f32" ? (signed ? m.f32.convert_s.i32(a) : m.f32.convert_u.i32(a)) : wrap(a);
  }
  if (t === "f32" || out === "f32") return undefined;
  const less = signed ? m.i32.lt_s : m.i32.lt_u, greater = signed ? m.i32.gt_s : m.i32.gt_u;
  switch (op) {
    case "add": return wrap(m.i32.add(a, b));
    case "sub": return wrap(m.i32.sub(a, b));
    case "mul": return wrap(m.i32.mul(a, b));
    case "neg": return wrap(m.i32.sub(m.i32.const(0), a));
    case "maximum": return m.select(greater(a, b), a, b);
    case "minimum": return m.select(less(a, b), a, b);
    default: return undefined;
  }
}

/**
 * The function `name` running one element-wise loop nest, the same nest emitElementwise writes in
 * AssemblyScript: collapsed dims, each operand's row pointer per outer iteration, the innermost dim in
 * f32x4 lanes (SIMD builds, float32 throughout, every op with a vector form, at least 4 wide) and then a
 * scalar tail. Operands and steps of other types than f32 and integers up to 32 bits need asc.
 */
function buildLoop(binaryen: Binaryen, m: BinaryenModule, name: string, loop: Loop, opts: { simd: boolean; helper: (name: string) => string; kernel: (name: string) => string }): void {
  const operands = [...loop.inputs, loop.out];
  const asOf = (dtype: DType) => DTYPES[dtype].as;
  const other = operands.find((v) => !LOOP_TYPES[asOf(v.dtype)]) ?? loop.steps.find((s) => !LOOP_TYPES[asOf(s.dtype)]);
  if (other) throw new NeedsAsc(`an element-wise loop over ${other.dtype}`);
  const ops = loopOps(binaryen, m, opts.helper);
  const types = operands.map((v) => asOf(v.dtype));
  const bytes = types.map((t) => LOOP_TYPES[t].bytes);
  const float = types.every((t) => t === "f32") && loop.steps.every((s) => s.dtype === "float32");

  const shape = loop.out.shape;
  const { dims, strides } = collapse(shape, operands.map((v) => broadcastStrides(v.shape, shape)));
  const rank = dims.length, inner = dims[rank - 1], outK = loop.inputs.length;
  const vectorizable = float && opts.simd && inner >= 4 && loop.steps.every((s) => getOp(s.op).elementwise?.vector && ops[s.op].vector);

  const locals: number[] = [];
  const local = (type: number) => locals.push(type) - 1;
  const counters = dims.slice(0, -1).map(() => local(binaryen.i32));
  const j = local(binaryen.i32);
  const rows = operands.map(() => local(binaryen.i32));
  const get = (i: number) => m.local.get(i, locals[i]);
  let labels = 0;
  /** while (cond) { body; advance } */
  const whileLoop = (cond: number, body: number[], advance: number) => {
    const exit = `exit${labels}`, repeat = `repeat${labels++}`;
    return m.block(exit, [m.loop(repeat, m.block(null, [m.br(exit, m.i32.eqz(cond)), ...body, advance, m.br(repeat)]))]);
  };
  const increment = (i: number, by: number) => m.local.set(i, m.i32.add(get(i), m.i32.const(by)));
  const innerStride = strides.map((st) => st[rank - 1]);
  const address = (k: number) => (innerStride[k] ? m.i32.add(get(rows[k]), m.i32.shl(get(j), m.i32.const(Math.log2(bytes[k])))) : get(rows[k]));

  const scalarLoad = (k: number): number => {
    const at = address(k);
    if (types[k] === "f32") return m.f32.load(0, 4, at);
    if (bytes[k] === 4) return m.i32.load(0, 4, at);
    const signed = LOOP_TYPES[types[k]].signed;
    return bytes[k] === 1 ? (signed ? m.i32.load8_s(0, 1, at) : m.i32.load8_u(0, 1, at)) : signed ? m.i32.load16_s(0, 2, at) : m.i32.load16_u(0, 2, at);
  };
  const scalarStore = (value: number): number => {
    const at = address(outK), t = types[outK];
    if (t === "f32") return m.f32.store(0, 4, at, value);
    return bytes[outK] === 4 ? m.i32.store(0, 4, at, value) : bytes[outK] === 1 ? m.i32.store8(0, 1, at, value) : m.i32.store16(0, 2, at, value);
  };
  const localType = (t: string) => (t === "f32" ? binaryen.f32 : binaryen.i32);
  const stepCode = (s: Loop["steps"][number], args: number[], t: string, out: string): number => {
    // float16 loads and stores as its u16 bit patterns; only these two conversions read or write them as numbers
    if (s.op === "floatToHalf") return m.call(opts.kernel("floatToHalf"), args, binaryen.i32);
    if (s.op === "halfToFloat") return m.call(opts.kernel("halfToFloat"), args, binaryen.f32);
    if (s.op === "roundToFloat") {
      const [mantissa, minExponent, overflow, flags] = ["mantissa", "minExponent", "overflow", "flags"].map((k) => m.i32.const(s.attrs[k] as number));
      return m.call(opts.kernel("roundToFloatFormat"), [args[0], mantissa, minExponent, m.f32.const(Math.fround(s.attrs.max as number)), overflow, flags], binaryen.f32);
    }
    if (s.op === "roundToE8m0") return m.call(opts.kernel("roundToE8m0"), [args[0], m.i32.const(s.attrs.mode as number), m.i32.const(s.attrs.saturate as number)], binaryen.f32);
    const direct = t === "f32" && out === "f32" && ops[s.op] ? ops[s.op].scalar(args, s.attrs) : integerStep(binaryen, m, s.op, args, s.attrs, t, out);
    return direct ?? (() => { throw new NeedsAsc(`element-wise ${s.op} over ${t} is not built directly yet`); })();
  };

  const body = (vector: boolean): number[] => {
    const code: number[] = [];
    const valueTypes = types.slice(0, outK);
    const values = loop.inputs.map((_, k) => {
      const v = local(vector ? binaryen.v128 : localType(types[k]));
      const load = !vector ? scalarLoad(k) : innerStride[k] ? m.v128.load(0, 16, address(k)) : m.f32x4.splat(m.f32.load(0, 4, get(rows[k])));
      code.push(m.local.set(v, load));
      return v;
    });
    for (const s of loop.steps) {
      const args = s.args.map((a) => get(values[a]));
      const out = asOf(s.dtype);
      const v = local(vector ? binaryen.v128 : localType(out));
      code.push(m.local.set(v, vector ? ops[s.op].vector!(args, s.attrs) : stepCode(s, args, valueTypes[s.args[s.args.length - 1]], out)));
      values.push(v);
      valueTypes.push(out);
    }
    const result = get(values[values.length - 1]);
    code.push(vector ? m.v128.store(0, 16, address(outK), result) : scalarStore(result));
    return code;
  };

  const row: number[] = operands.map((v, k) => {
    let ptr = m.i32.const(v.ptr);
    counters.forEach((c, d) => {
      if (strides[k][d]) ptr = m.i32.add(ptr, m.i32.mul(get(c), m.i32.const(strides[k][d] * bytes[k])));
    });
    return m.local.set(rows[k], ptr);
  });
  row.push(m.local.set(j, m.i32.const(0)));
  if (vectorizable) row.push(whileLoop(m.i32.le_u(m.i32.add(get(j), m.i32.const(4)), m.i32.const(inner)), body(true), increment(j, 4)));
  row.push(whileLoop(m.i32.lt_u(get(j), m.i32.const(inner)), body(false), increment(j, 1)));
  let nest = m.block(null, row);
  for (let d = counters.length - 1; d >= 0; d--) {
    nest = m.block(null, [m.local.set(counters[d], m.i32.const(0)), whileLoop(m.i32.lt_u(get(counters[d]), m.i32.const(dims[d])), [nest], increment(counters[d], 1))]);
  }
  m.addFunction(name, binaryen.none, binaryen.none, locals, nest);
}
