import { fail } from "../errors.js";
import { DTYPES, floatToHalf, halfToFloat, isDType, roundToE8m0, roundToFloatFormat, type DType, type FloatFormatParams } from "../ir/dtype.js";
import type { Attrs, HostTensor, TensorType } from "../ir/graph.js";
import { broadcastMap, broadcastShapes, newHost } from "../ir/shape.js";
import { apply, Tensor } from "../tensor/tensor.js";
import { f32, i32, kernelCall, LOOP_TYPES, wasmOp as w, wrapTo, type LoopExpr, type LoopLowering, type LoopType } from "./loop-ir.js";
import { defineOp, sumToShape, type ElementwiseCode, type Epilogue, type GradRule } from "./registry.js";

/**
 * Element-wise ops. Each is one line of math on the host and one loop lowering in wasm-level primitives
 * (float32 and integers up to 32 bits, with an f32x4 form where SIMD has one), plus an AssemblyScript
 * template for the types beyond those; the code generator fuses chains of them into a single generated loop.
 */

/** An AssemblyScript literal of type `t` (f32 by default: kernel parameters are f32). */
const num = (x: number, t = "f32"): string => {
  if (t !== "f32" && t !== "f64") return `<${t}>${Math.trunc(x)}`;
  if (Number.isNaN(x)) return `<${t}>NaN`;
  if (!Number.isFinite(x)) return x > 0 ? `<${t}>Infinity` : `<${t}>-Infinity`;
  const s = String(t === "f32" ? Math.fround(x) : x);
  return `<${t}>${/[.e]/.test(s) ? s : s + ".0"}`;
};
/** AssemblyScript's math namespace for a float type */
const math = (t: string): string => (t === "f64" ? "Math" : "Mathf");
const FLOATS: DType[] = ["float32", "float64"];
const INTEGERS: DType[] = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"];
const NUMERIC: DType[] = [...FLOATS, ...INTEGERS];
const ANY: DType[] = [...NUMERIC, "bool"];
const attr = (attrs: Attrs, key: string): number => attrs[key] as number;

interface Spec {
  arity: number;
  /** `t`: the dtype of the (last) input */
  fn(xs: number[], attrs: Attrs, t: DType): number;
  loop?: LoopLowering;
  /** AssemblyScript template for what `loop` leaves out. `t`: the AS type of the (last) input; `out`: of the result */
  scalar?(a: string[], attrs: Attrs, t: string, out: string): string;
  fault?: ElementwiseCode["fault"];
  /** replaces the broadcast map of `fn` where a JS number cannot hold the result */
  reference?(inputs: HostTensor[], attrs: Attrs): HostTensor | undefined;
  /** output dtype; default: the inputs' common dtype */
  out?: DType | ((attrs: Attrs) => DType);
  /** dtypes the generated loop handles (of the last input); default float32 only */
  compiled?: DType[];
  /** input dtypes; default: all inputs share one dtype */
  inputs?(types: TensorType[]): void;
  epilogue?(attrs: Attrs): Epilogue;
}

/** How gradients flow through an element-wise op, or why none does: every op says one or the other. */
type Derivative = { grad: GradRule } | { notDifferentiable: string };

/** dL/dx of a unary op from x, y = op(x) and dL/dy. */
const d1 = (rule: (x: Tensor, y: Tensor, g: Tensor, attrs: Attrs) => Tensor): Derivative => ({
  grad: ({ inputs: [x], output, grad, attrs }) => [rule(x, output, grad, attrs)],
});
type BinaryRule = (a: Tensor, b: Tensor, y: Tensor, g: Tensor) => Tensor;
/** A binary op's gradients, computed in the broadcast output shape and summed back to each input's shape. */
const d2 = (da: BinaryRule, db: BinaryRule): Derivative => ({
  grad: ({ inputs: [a, b], output, grad, needs }) => [
    needs[0] ? sumToShape(da(a, b, output, grad), a.shape) : null,
    needs[1] ? sumToShape(db(a, b, output, grad), b.shape) : null,
  ],
});
/** g where the mask holds, else 0 */
const maskGrad = (mask: Tensor, g: Tensor): Tensor => Tensor.where(mask, g, 0);
const PIECEWISE_CONSTANT = { notDifferentiable: "it is piecewise constant (its gradient is zero almost everywhere and undefined at the steps)" };
const FLOAT16_BITS = { notDifferentiable: "it converts between float32 values and float16 bit patterns, a storage format: train in float32" };
const COMPARISON = { notDifferentiable: "it is a comparison: its bool result carries no gradient" };

function elementwise(name: string, spec: Spec, derivative: Derivative): void {
  const code: ElementwiseCode = { loop: spec.loop, scalar: spec.scalar, fault: spec.fault };
  const outOf = (inputs: TensorType[], attrs: Attrs): DType =>
    typeof spec.out === "function" ? spec.out(attrs) : spec.out ?? inputs[inputs.length - 1].dtype;
  const compiled = spec.compiled ?? ["float32"];
  defineOp({
    ...derivative,
    name,
    infer(inputs, attrs) {
      if (inputs.length !== spec.arity) fail(`${name} takes ${spec.arity} inputs, got ${inputs.length}`);
      if (spec.inputs) spec.inputs(inputs);
      else {
        const bad = inputs.find((t) => t.dtype !== inputs[0].dtype);
        if (bad) fail(`${name}: dtypes ${inputs[0].dtype} and ${bad.dtype} differ`);
      }
      return [{ shape: broadcastShapes(...inputs.map((t) => t.shape)), dtype: outOf(inputs, attrs) }];
    },
    reference: (inputs, attrs) => [spec.reference?.(inputs, attrs) ?? broadcastMap(inputs, outOf(inputs, attrs), (xs) => spec.fn(xs, attrs, inputs[inputs.length - 1].dtype))],
    elementwise: code,
    compiledDTypes: (node) => compiled.includes(node.inputs[node.inputs.length - 1].dtype),
    epilogue: spec.epilogue,
  });
}

/** JS erf, fractional error < 1.2e-7 (Numerical Recipes' Chebyshev erfc). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

const unary = (fn: (x: number, attrs: Attrs) => number, loop: LoopLowering | undefined, scalar: ((a: string, attrs: Attrs, t: string) => string) | undefined, compiled?: DType[], epilogue?: Spec["epilogue"]): Spec => ({
  arity: 1,
  fn: (xs, attrs) => fn(xs[0], attrs),
  loop,
  scalar: scalar && ((a, attrs, t) => scalar(a[0], attrs, t)),
  compiled,
  epilogue,
});

const binary = (fn: (x: number, y: number) => number, loop: LoopLowering | undefined, scalar: (a: string, b: string, t: string) => string, compiled: DType[] = NUMERIC): Spec => ({
  arity: 2,
  fn: (xs) => fn(xs[0], xs[1]),
  loop,
  scalar: (a, _attrs, t) => scalar(a[0], a[1], t),
  compiled,
});

// --- loop lowerings ---
const sign = (t: LoopType) => (LOOP_TYPES[t].signed ? "s" : "u");
type IntegerForm = (a: LoopExpr[], t: LoopType, out: LoopType) => LoopExpr | undefined;
/** `f32.<name>` and `f32x4.<name>` on float32; `integer` on the integer types */
const lanes = (name: string, integer?: IntegerForm): LoopLowering => ({
  scalar: (a, _attrs, t, out) => (t === "f32" ? (out === "f32" ? w(`f32.${name}`, ...a) : undefined) : out === "f32" ? undefined : integer?.(a, t, out)),
  vector: (a) => w(`f32x4.${name}`, ...a),
});
/** an i32 instruction, its result wrapped to the step's type */
const wrapped = (op: string): IntegerForm => (a, _t, out) => wrapTo(out, w(op, ...a));
/** a float32-only step through a vmath helper of the kernel library */
const vmath = (fn: "exp" | "log" | "erf"): LoopLowering => ({
  scalar: (a, _attrs, t) => (t === "f32" ? { helper: fn, form: "Scalar", args: a } : undefined),
  vector: (a) => ({ helper: fn, form: "Vec", args: a }),
});
/** integer-only steps (bits, shifts) */
const integers = (form: IntegerForm): LoopLowering => ({ scalar: (a, _attrs, t, out) => (t === "f32" || out === "f32" ? undefined : form(a, t, out)) });
/** a float function of AssemblyScript's Math/Mathf */
const mathFn = (name: string) => (a: string, _attrs: Attrs, t: string) => `${math(t)}.${name}(${a})`;

// --- arithmetic ---------------------------------------------------------------------------------
elementwise("add", binary((x, y) => x + y, lanes("add", wrapped("i32.add")), (a, b) => `(${a} + ${b})`), d2((_a, _b, _y, g) => g, (_a, _b, _y, g) => g));
elementwise("sub", binary((x, y) => x - y, lanes("sub", wrapped("i32.sub")), (a, b) => `(${a} - ${b})`), d2((_a, _b, _y, g) => g, (_a, _b, _y, g) => g.neg()));
elementwise("mul", binary((x, y) => x * y, lanes("mul", wrapped("i32.mul")), (a, b) => `(${a} * ${b})`), d2((_a, b, _y, g) => g.mul(b), (a, _b, _y, g) => g.mul(a)));
/** run()'s status when an integer division or remainder meets a zero divisor (a wasm trap otherwise) */
export const DIVISION_BY_ZERO_STATUS = 5;
const INTEGER_AS = ["i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64"];
/** integer x / 0 and x % 0 have no value: the host reference refuses them and compiled code returns a status */
const zeroDivisor = {
  fault: (a: string[], t: string) => (INTEGER_AS.includes(t) ? { when: `${a[1]} == 0`, status: DIVISION_BY_ZERO_STATUS } : null),
  loopFault: (a: LoopExpr[], t: LoopType) => (t === "f32" ? null : { when: w("i32.eqz", a[1]), status: DIVISION_BY_ZERO_STATUS }),
  check(op: string, divisor: number, t: DType): void {
    if (divisor === 0 && INTEGERS.includes(t)) fail(`${op}: ${t} division by zero (compiled, run() returns status ${DIVISION_BY_ZERO_STATUS})`);
  },
};
// integer division truncates toward zero (C, ONNX); MIN / -1 wraps to MIN, as the host's typed arrays do (wasm's div_s would trap)
const integerDivide: IntegerForm = ([a, b], t, out) =>
  !LOOP_TYPES[t].signed ? w("i32.div_u", a, b) : t === "i32" ? { cond: w("i32.eq", b, i32(-1)), then: w("i32.sub", i32(0), a), otherwise: w("i32.div_s", a, b), type: "i32" } : wrapTo(out, w("i32.div_s", a, b));
elementwise("div", {
  ...binary((x, y) => x / y, { ...lanes("div", integerDivide), fault: zeroDivisor.loopFault }, (a, b, t) => (t === "i32" || t === "i64" ? `(${b} == -1 ? -${a} : ${a} / ${b})` : `(${a} / ${b})`)),
  fn: ([x, y], _attrs, t) => (zeroDivisor.check("div", y, t), x / y),
  fault: zeroDivisor.fault,
}, d2((_a, b, _y, g) => g.div(b), (_a, b, y, g) => g.mul(y).div(b).neg()));
// PyTorch's masks: no gradient to the base where the exponent is 0, none to the exponent at 0 ** (b >= 0)
elementwise("pow", binary((x, y) => x ** y, undefined, (a, b, t) => (t === "f32" || t === "f64" ? `${math(t)}.pow(${a}, ${b})` : `<${t}>Math.pow(<f64>${a}, <f64>${b})`)), d2(
  (a, b, _y, g) => Tensor.where(b.eq(0), 0, g.mul(b).mul(a.pow(b.sub(1)))),
  (a, b, y, g) => {
    const viaLog = g.mul(y).mul(a.log());
    return Tensor.where(a.eq(0), Tensor.where(b.ge(0), 0, viaLog), viaLog);
  },
));
// ties split the gradient evenly between both inputs, as in PyTorch
const tieGrad = (wins: Tensor, tie: Tensor, g: Tensor): Tensor => Tensor.where(wins, g, Tensor.where(tie, g.mul(0.5), 0));
elementwise("maximum", binary((x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y)), lanes("max", ([a, b], t) => w("select", a, b, w(`i32.gt_${sign(t)}`, a, b))), (a, b, t) => `max<${t}>(${a}, ${b})`),
  d2((a, b, _y, g) => tieGrad(a.gt(b), a.eq(b), g), (a, b, _y, g) => tieGrad(b.gt(a), a.eq(b), g)));
elementwise("minimum", binary((x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y)), lanes("min", ([a, b], t) => w("select", a, b, w(`i32.lt_${sign(t)}`, a, b))), (a, b, t) => `min<${t}>(${a}, ${b})`),
  d2((a, b, _y, g) => tieGrad(a.lt(b), a.eq(b), g), (a, b, _y, g) => tieGrad(b.lt(a), a.eq(b), g)));

elementwise("neg", unary((x) => -x, lanes("neg", ([a], _t, out) => wrapTo(out, w("i32.sub", i32(0), a))), (a) => `(-${a})`, NUMERIC), d1((_x, _y, g) => g.neg()));
elementwise("abs", unary(Math.abs, lanes("abs", ([a], t, out) => (LOOP_TYPES[t].signed ? wrapTo(out, w("select", w("i32.sub", i32(0), a), a, w("i32.lt_s", a, i32(0)))) : a)), (a, _, t) => `abs<${t}>(${a})`, NUMERIC), d1((x, _y, g) => g.mul(x.sign())));
elementwise("sqrt", unary(Math.sqrt, lanes("sqrt"), (a, _, t) => `sqrt<${t}>(${a})`, FLOATS), d1((_x, y, g) => g.div(y.mul(2))));
elementwise("reciprocal", unary((x) => 1 / x, {
  scalar: ([a], _attrs, t) => (t === "f32" ? w("f32.div", f32(1), a) : undefined),
  vector: ([a]) => w("f32x4.div", w("f32x4.splat", f32(1)), a),
}, (a, _, t) => `(${num(1, t)} / ${a})`, FLOATS), d1((_x, y, g) => g.mul(y.mul(y)).neg()));
elementwise("exp", unary(Math.exp, vmath("exp"), (a) => `Math.exp(${a})`, FLOATS), d1((_x, y, g) => g.mul(y)));
elementwise("log", unary(Math.log, vmath("log"), (a) => `Math.log(${a})`, FLOATS), d1((x, _y, g) => g.div(x)));
elementwise("erf", unary(erf, vmath("erf"), undefined), d1((x, _y, g) => g.mul(x.mul(x).neg().exp().mul(2 / Math.sqrt(Math.PI)))));
elementwise("sin", unary(Math.sin, undefined, mathFn("sin"), FLOATS), d1((x, _y, g) => g.mul(x.cos())));
elementwise("cos", unary(Math.cos, undefined, mathFn("cos"), FLOATS), d1((x, _y, g) => g.mul(x.sin()).neg()));
elementwise("tan", unary(Math.tan, undefined, mathFn("tan"), FLOATS), d1((_x, y, g) => g.mul(y.mul(y).add(1))));
elementwise("asin", unary(Math.asin, undefined, mathFn("asin"), FLOATS), d1((x, _y, g) => g.div(x.mul(x).neg().add(1).sqrt())));
elementwise("acos", unary(Math.acos, undefined, mathFn("acos"), FLOATS), d1((x, _y, g) => g.div(x.mul(x).neg().add(1).sqrt()).neg()));
elementwise("atan", unary(Math.atan, undefined, mathFn("atan"), FLOATS), d1((x, _y, g) => g.div(x.mul(x).add(1))));
elementwise("sinh", unary(Math.sinh, undefined, mathFn("sinh"), FLOATS), d1((x, _y, g) => g.mul(apply("cosh", [x], {}))));
elementwise("cosh", unary(Math.cosh, undefined, mathFn("cosh"), FLOATS), d1((x, _y, g) => g.mul(apply("sinh", [x], {}))));
elementwise("asinh", unary(Math.asinh, undefined, mathFn("asinh"), FLOATS), d1((x, _y, g) => g.div(x.mul(x).add(1).sqrt())));
elementwise("acosh", unary(Math.acosh, undefined, mathFn("acosh"), FLOATS), d1((x, _y, g) => g.div(x.mul(x).sub(1).sqrt())));
elementwise("atanh", unary(Math.atanh, undefined, mathFn("atanh"), FLOATS), d1((x, _y, g) => g.div(x.mul(x).neg().add(1))));
/** remainder: with `fmod` the sign of the dividend (C fmod), else of the divisor (Python %) */
const remainder = (x: number, y: number, fmod: boolean): number => {
  const r = x % y;
  return !fmod && r !== 0 && r < 0 !== y < 0 ? r + y : r;
};
/** floorMod (runtime-as/common.ts) on integers: r = a % b, plus b where r is non-zero and its sign differs from b's */
const integerRemainder = ([a, b]: LoopExpr[], t: LoopType, fmod: boolean): LoopExpr => {
  if (!LOOP_TYPES[t].signed) return w("i32.rem_u", a, b);
  const r = w("i32.rem_s", a, b);
  return fmod ? r : w("select", w("i32.add", r, b), r, w("i32.and", w("i32.ne", r, i32(0)), w("i32.lt_s", w("i32.xor", r, b), i32(0))));
};
elementwise("mod", {
  arity: 2,
  fn: ([x, y], attrs, t) => (zeroDivisor.check("mod", y, t), remainder(x, y, Boolean(attrs.fmod))),
  // a float remainder is a library call in AssemblyScript (fmod), not an instruction: asc compiles it
  loop: { scalar: (a, attrs, t, out) => (t === "f32" || out === "f32" ? undefined : integerRemainder(a, t, Boolean(attrs.fmod))), fault: zeroDivisor.loopFault },
  scalar: (a, attrs, t) => (attrs.fmod ? `(${a[0]} % ${a[1]})` : `floorMod<${t}>(${a[0]}, ${a[1]})`),
  fault: zeroDivisor.fault,
  compiled: NUMERIC,
}, d2((_a, _b, _y, g) => g, (a, b, y, g) => g.mul(a.sub(y).div(b)).neg()));
/** the integer types narrower than i32, which a float converts into through a saturated i32 and a clamp */
const NARROW_RANGE: Record<string, [number, number]> = { i8: [-128, 127], u8: [0, 255], i16: [-32768, 32767] };
const INTEGER_RANGE: Partial<Record<DType, [number, number]>> = { int8: NARROW_RANGE.i8, uint8: NARROW_RANGE.u8, int16: NARROW_RANGE.i16, int32: [-(2 ** 31), 2 ** 31 - 1] };
/** float → int64, saturated exactly: 2^63 − 1 is not a float64, so this one cannot go through a JS number */
function floatToInt64(x: HostTensor): HostTensor {
  const out = newHost([...x.shape], "int64");
  const data = out.data as BigInt64Array;
  x.data.forEach((v, i) => {
    const f = Number(v);
    data[i] = Number.isNaN(f) ? 0n : f >= 2 ** 63 ? 2n ** 63n - 1n : f <= -(2 ** 63) ? -(2n ** 63n) : BigInt(Math.trunc(f));
  });
  return out;
}
/**
 * dtype conversion: anything non-zero is true; floats truncate toward zero into integers and saturate at the
 * type's range, NaN giving 0 (wasm's trunc_sat; ONNX leaves out-of-range casts undefined). Integers wrap.
 */
elementwise("cast", {
  arity: 1,
  out: (attrs) => (isDType(String(attrs.to)) ? (attrs.to as DType) : fail(`cast: unknown target dtype '${attrs.to}'`)),
  fn: ([x], attrs, t) => {
    if (attrs.to === "bool") return x !== 0 ? 1 : 0;
    const range = INTEGER_RANGE[attrs.to as DType];
    return range && FLOATS.includes(t) ? (Number.isNaN(x) ? 0 : Math.min(Math.max(Math.trunc(x), range[0]), range[1])) : x;
  },
  loop: {
    scalar: ([a], attrs, t, out) => {
      if (attrs.to === "bool") return t === "f32" ? w("f32.ne", a, f32(0)) : w("i32.ne", a, i32(0));
      if (t !== "f32") return out === "f32" ? w(LOOP_TYPES[t].signed ? "f32.convert_i32_s" : "f32.convert_i32_u", a) : wrapTo(out, a);
      if (out === "f32") return a;
      // saturating truncation (AssemblyScript's conversion with nontrapping-f2i), clamped to the narrow types' range
      const truncated = w("i32.trunc_sat_f32_s", a);
      if (out === "i32") return truncated;
      const narrow = NARROW_RANGE[out];
      if (!narrow) return undefined; // u16, u32: asc's own conversions
      const atLeast = w("select", truncated, i32(narrow[0]), w("i32.gt_s", truncated, i32(narrow[0])));
      return w("select", atLeast, i32(narrow[1]), w("i32.lt_s", atLeast, i32(narrow[1])));
    },
  },
  scalar: (a, attrs, t, out) => {
    if (attrs.to === "bool") return `<u8>(${a[0]} != ${num(0, t)})`;
    const narrow = NARROW_RANGE[out];
    return narrow && (t === "f32" || t === "f64") ? `<${out}>min<i32>(max<i32>(<i32>${a[0]}, ${narrow[0]}), ${narrow[1]})` : `<${out}>${a[0]}`;
  },
  reference: ([x], attrs) => (attrs.to === "int64" && FLOATS.includes(x.dtype) ? floatToInt64(x) : undefined),
  compiled: ANY,
}, { grad: ({ inputs: [x], grad }) => [FLOATS.includes(x.dtype) && FLOATS.includes(grad.dtype) ? apply("cast", [grad], { to: x.dtype }) : null] });
/** float32 → float16 bit patterns, rounded to nearest even (numpy's astype); float16 values compute as float32 between. */
elementwise("floatToHalf", {
  arity: 1,
  out: "float16",
  fn: ([x]) => floatToHalf(x),
  loop: { scalar: ([a]) => kernelCall("floatToHalf", "i32", a) },
  inputs: ([x]) => { if (x.dtype !== "float32") fail(`floatToHalf takes float32, got ${x.dtype}`); },
}, FLOAT16_BITS);
/** float16 bit patterns → their float32 values (exact). */
elementwise("halfToFloat", {
  arity: 1,
  out: "float32",
  fn: ([x]) => halfToFloat(x),
  loop: { scalar: ([a]) => kernelCall("halfToFloat", "f32", a) },
  inputs: ([x]) => { if (x.dtype !== "float16") fail(`halfToFloat takes float16, got ${x.dtype}`); },
  compiled: ["float16"],
}, FLOAT16_BITS);
/** float32 rounded to a narrower float format's values (float8, float4e2m1, bfloat16: attrs as roundToFloatFormat's), which compute as float32. */
elementwise("roundToFloat", {
  arity: 1,
  fn: ([x], attrs) => roundToFloatFormat(x, attrs as unknown as FloatFormatParams),
  loop: { scalar: ([a], attrs) => kernelCall("roundToFloatFormat", "f32", a, ...["mantissa", "minExponent"].map((k) => i32(attr(attrs, k))), f32(attr(attrs, "max")), ...["overflow", "flags"].map((k) => i32(attr(attrs, k)))) },
}, PIECEWISE_CONSTANT);
/** float32 rounded to float8e8m0's powers of two (attrs mode: 0 up, 1 down, 2 nearest; saturate 0/1), which compute as float32. */
elementwise("roundToE8m0", {
  arity: 1,
  fn: ([x], attrs) => roundToE8m0(x, attr(attrs, "mode"), attr(attrs, "saturate") !== 0),
  loop: { scalar: ([a], attrs) => kernelCall("roundToE8m0", "f32", a, i32(attr(attrs, "mode")), i32(attr(attrs, "saturate"))) },
}, PIECEWISE_CONSTANT);
/** The same bytes read as another dtype of the same width (ONNX BitCast); the reference copies the bytes, so 64-bit patterns stay exact. */
defineOp({
  name: "bitcast",
  notDifferentiable: "it reinterprets bits",
  infer(inputs, attrs) {
    if (inputs.length !== 1) fail(`bitcast takes 1 input, got ${inputs.length}`);
    const [x] = inputs, to = String(attrs.to);
    if (!isDType(to)) fail(`bitcast: unknown target dtype '${to}'`);
    if (DTYPES[to].bytes !== DTYPES[x.dtype].bytes) fail(`bitcast: ${x.dtype} (${DTYPES[x.dtype].bytes} bytes) and ${to} (${DTYPES[to].bytes} bytes) differ in width`);
    return [{ shape: x.shape, dtype: to }];
  },
  reference: ([x], attrs) => {
    const to = attrs.to as DType;
    const bytes = new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength).slice();
    return [{ shape: x.shape, dtype: to, data: new DTYPES[to].array(bytes.buffer, 0, x.data.length) }];
  },
  // between a float and an integer type AssemblyScript's reinterpret; between integers of one width a wrapping cast keeps the bits
  elementwise: {
    loop: { scalar: ([a], _attrs, t, out) => (t === out ? a : t === "f32" ? w("i32.reinterpret_f32", a) : out === "f32" ? w("f32.reinterpret_i32", a) : wrapTo(out, a)) },
    scalar: ([a], _attrs, t, out) => (t.startsWith("f") !== out.startsWith("f") ? `reinterpret<${out}>(${a})` : `<${out}>(${a})`),
  },
  compiledDTypes: () => true,
});
elementwise("floor", unary(Math.floor, lanes("floor"), (a, _, t) => `floor<${t}>(${a})`, FLOATS), PIECEWISE_CONSTANT);
elementwise("ceil", unary(Math.ceil, lanes("ceil"), (a, _, t) => `ceil<${t}>(${a})`, FLOATS), PIECEWISE_CONSTANT);
/** round half to even, like numpy, PyTorch and ONNX */
elementwise("round", unary((x) => { const r = Math.round(x); return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r; }, lanes("nearest"), (a, _, t) => `nearest<${t}>(${a})`, FLOATS), PIECEWISE_CONSTANT);
const signOf = ([a]: LoopExpr[], _attrs: Attrs, t: LoopType): LoopExpr => {
  if (t === "f32") return w("select", f32(1), w("select", f32(-1), a, w("f32.lt", a, f32(0))), w("f32.gt", a, f32(0)));
  const positive = w(`i32.gt_${sign(t)}`, a, i32(0));
  return LOOP_TYPES[t].signed ? w("select", i32(1), w("select", i32(-1), a, w("i32.lt_s", a, i32(0))), positive) : w("select", i32(1), a, positive);
};
elementwise("sign", unary((x) => (x > 0 ? 1 : x < 0 ? -1 : x), { scalar: signOf }, (a, _, t) => `(${a} > 0 ? ${num(1, t)} : ${a} < 0 ? ${num(-1, t)} : ${a})`, NUMERIC), PIECEWISE_CONSTANT);
// above the threshold the value is x itself, so the gradient is exactly g there (as in PyTorch)
elementwise("softplus", unary((x) => (x > 20 ? x : Math.log1p(Math.exp(x))), {
  scalar: ([a]) => w("select", a, { helper: "log", form: "Scalar", args: [w("f32.add", f32(1), { helper: "exp", form: "Scalar", args: [a] })] }, w("f32.gt", a, f32(20))),
}, undefined),
  d1((x, _y, g) => Tensor.where(x.gt(20), g, g.mul(x.sigmoid()))));

// --- activations: also fusable as the store-time epilogue of gemm/conv (codes of runtime-as/act.ts) --
export const ACT = { none: 0, relu: 1, clamp: 2, leakyRelu: 3, sigmoid: 4, tanh: 5, silu: 6, hardswish: 7, gelu: 8, hardsigmoid: 9, elu: 10 } as const;

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const relu6ish = (x: number, lo: number, hi: number): number => (Number.isNaN(x) ? x : Math.min(Math.max(x, lo), hi));
/** The host meaning of each epilogue, shared by the activation ops and by fused gemm/conv references. */
export function applyEpilogue(x: number, e: Epilogue): number {
  switch (e.act) {
    case ACT.none: return x;
    case ACT.relu: return x > 0 || Number.isNaN(x) ? x : 0;
    case ACT.clamp: return relu6ish(x, e.p0, e.p1);
    case ACT.leakyRelu: return x >= 0 ? x : e.p0 * x;
    case ACT.sigmoid: return sigmoid(x);
    case ACT.tanh: return Math.tanh(x);
    case ACT.silu: return x * sigmoid(x);
    case ACT.hardswish: return (x * relu6ish(x + 3, 0, 6)) / 6;
    case ACT.gelu: return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case ACT.hardsigmoid: return relu6ish(e.p0 * x + e.p1, 0, 1);
    case ACT.elu: return x > 0 ? x : e.p0 * (Math.exp(x) - 1);
  }
  fail(`unknown activation code ${e.act}`);
}

function activation(name: keyof typeof ACT, derivative: Derivative, params: (attrs: Attrs) => [number, number] = () => [0, 0]): void {
  const epilogue = (attrs: Attrs): Epilogue => {
    const [p0, p1] = params(attrs);
    return { act: ACT[name], p0, p1 };
  };
  const call = (form: "Scalar" | "Vec") => ([a]: LoopExpr[], attrs: Attrs): LoopExpr => {
    const e = epilogue(attrs);
    return { helper: "act", form, act: e.act, args: [a, f32(e.p0), f32(e.p1)] };
  };
  elementwise(name, unary((x, attrs) => applyEpilogue(x, epilogue(attrs)), { scalar: call("Scalar"), vector: call("Vec") }, undefined, undefined, epilogue), derivative);
}
const clampMin = (a: Attrs) => attr(a, "min") ?? -Infinity, clampMax = (a: Attrs) => attr(a, "max") ?? Infinity;
const leakyAlpha = (a: Attrs) => attr(a, "alpha") ?? 0.01;
const hardsigmoidParams = (a: Attrs): [number, number] => [attr(a, "alpha") ?? 1 / 6, attr(a, "beta") ?? 0.5];
const eluAlpha = (a: Attrs) => attr(a, "alpha") ?? 1;

// masks from the output, as PyTorch's relu and hardtanh backward: the input need not be kept for backward
// (and a conv or matmul producing it can fuse the activation into its epilogue)
activation("relu", d1((_x, y, g) => maskGrad(y.gt(0), g)));
// the gradient passes where min < x < max (PyTorch's hardtanh / ReLU6 rule; torch.clamp also passes it at
// x == min or max, a set of measure zero)
activation("clamp", d1((_x, y, g, a) => {
  const [min, max] = [clampMin(a), clampMax(a)];
  const below = max < Infinity ? maskGrad(y.lt(max), g) : g;
  return min > -Infinity ? maskGrad(y.gt(min), below) : below;
}), (a) => [clampMin(a), clampMax(a)]);
activation("leakyRelu", d1((x, _y, g, a) => Tensor.where(x.gt(0), g, g.mul(leakyAlpha(a)))), (a) => [leakyAlpha(a), 0]);
activation("sigmoid", d1((_x, y, g) => g.mul(y.sub(y.mul(y)))));
activation("tanh", d1((_x, y, g) => g.mul(y.mul(y).neg().add(1))));
activation("silu", d1((x, _y, g) => {
  const s = x.sigmoid();
  return g.mul(s).mul(x.mul(s.neg().add(1)).add(1));
}));
activation("hardswish", d1((x, _y, g) => Tensor.where(x.lt(-3), 0, Tensor.where(x.le(3), g.mul(x.div(3).add(0.5)), g))));
// d/dx x·Φ(x) = Φ(x) + x·φ(x)
activation("gelu", d1((x, _y, g) => {
  const cdf = x.mul(Math.SQRT1_2).erf().add(1).mul(0.5);
  const pdf = x.mul(x).mul(-0.5).exp().mul(1 / Math.sqrt(2 * Math.PI));
  return g.mul(cdf.add(x.mul(pdf)));
}));
activation("hardsigmoid", d1((x, _y, g, a) => {
  const [alpha, beta] = hardsigmoidParams(a);
  const z = x.mul(alpha).add(beta);
  return Tensor.where(z.le(0), 0, maskGrad(z.lt(1), g.mul(alpha)));
}), hardsigmoidParams);
// below 0, y = α(eˣ - 1), so dy/dx = y + α
activation("elu", d1((x, y, g, a) => Tensor.where(x.gt(0), g, g.mul(y.add(eluAlpha(a))))), (a) => [eluAlpha(a), 0]);

// --- comparisons and selection (bool results stored as one byte) --------------------------------
/** `name`: the instruction's (eq, lt, ...), signed or not by type on integers */
const compare = (fn: (x: number, y: number) => boolean, op: string, name: string): Spec => ({
  arity: 2,
  out: "bool",
  fn: (xs) => (fn(xs[0], xs[1]) ? 1 : 0),
  loop: { scalar: ([a, b], _attrs, t) => w(t === "f32" ? `f32.${name}` : name === "eq" || name === "ne" ? `i32.${name}` : `i32.${name}_${sign(t)}`, a, b) },
  scalar: (a) => `<u8>(${a[0]} ${op} ${a[1]})`,
  compiled: ANY,
});
elementwise("eq", compare((x, y) => x === y, "==", "eq"), COMPARISON);
elementwise("ne", compare((x, y) => x !== y, "!=", "ne"), COMPARISON);
elementwise("lt", compare((x, y) => x < y, "<", "lt"), COMPARISON);
elementwise("le", compare((x, y) => x <= y, "<=", "le"), COMPARISON);
elementwise("gt", compare((x, y) => x > y, ">", "gt"), COMPARISON);
elementwise("ge", compare((x, y) => x >= y, ">=", "ge"), COMPARISON);
elementwise("where", {
  arity: 3,
  fn: (xs) => (xs[0] ? xs[1] : xs[2]),
  loop: { scalar: ([c, a, b]) => w("select", a, b, c) },
  scalar: (a) => `(${a[0]} ? ${a[1]} : ${a[2]})`,
  compiled: ANY,
  inputs(types) {
    if (types[0].dtype !== "bool") fail(`where: the condition must be bool, got ${types[0].dtype}`);
    if (types[1].dtype !== types[2].dtype) fail(`where: dtypes ${types[1].dtype} and ${types[2].dtype} differ`);
  },
}, {
  grad: ({ inputs: [cond, a, b], grad, needs }) => [
    null,
    needs[1] ? sumToShape(maskGrad(cond, grad), a.shape) : null,
    needs[2] ? sumToShape(Tensor.where(cond, 0, grad), b.shape) : null,
  ],
});

// --- bits of integers (ONNX Bitwise*, BitShift); the references compute in BigInt (JavaScript's bit operators
//     are 32-bit signed), exact as far as the element values are (64-bit ones pass through Number) ---
const BITWISE = { notDifferentiable: "it acts on the bits of integers" };
const big = (x: number): bigint => BigInt(Math.trunc(x));
// and, or, xor of two values of one integer type stay within it: no wrapping
const bitwise = (fn: (x: bigint, y: bigint) => bigint, op: string, instruction: string): Spec => binary((x, y) => Number(fn(big(x), big(y))), integers((a) => w(instruction, ...a)), (a, b) => `(${a} ${op} ${b})`, INTEGERS);
elementwise("bitwiseAnd", bitwise((x, y) => x & y, "&", "i32.and"), BITWISE);
elementwise("bitwiseOr", bitwise((x, y) => x | y, "|", "i32.or"), BITWISE);
elementwise("bitwiseXor", bitwise((x, y) => x ^ y, "^", "i32.xor"), BITWISE);
elementwise("bitwiseNot", unary((x) => Number(~big(x)), integers(([a], _t, out) => wrapTo(out, w("i32.xor", a, i32(-1)))), (a) => `(~${a})`, INTEGERS), BITWISE);
const UNSIGNED: DType[] = ["uint8", "uint16", "uint32", "uint64"];
/** Shifts of unsigned integers; an amount of the width or more leaves 0 (WebAssembly would take it modulo the width). */
const shift = (left: boolean): Spec => ({
  arity: 2,
  fn: ([x, y], _attrs, dtype) => {
    const bits = DTYPES[dtype].bytes * 8;
    return y >= bits ? 0 : Number(BigInt.asUintN(bits, left ? big(x) << big(y) : big(x) >> big(y)));
  },
  loop: integers(([a, b], t, out) => w("select", i32(0), left ? wrapTo(out, w("i32.shl", a, b)) : w("i32.shr_u", a, b), w("i32.ge_u", b, i32(8 * LOOP_TYPES[t].bytes)))),
  scalar: ([a, b], _attrs, t) => `(${b} >= <${t}>${Number(t.slice(1))} ? <${t}>0 : ${a} ${left ? "<<" : ">>"} ${b})`,
  compiled: UNSIGNED,
});
elementwise("shiftLeft", shift(true), BITWISE);
elementwise("shiftRight", shift(false), BITWISE);

export { num as floatLiteral };

// --- batch norm (inference): rewritten into sub/div/mul/add, which constant folding then shrinks to
//     one multiply-add per element (or folds into the preceding conv entirely, see passes/fold-batchnorm)
defineOp({
  name: "batchnorm",
  infer([x, ...params]) {
    if (x.shape.length < 2) fail(`batchnorm input must be [N, C, ...], got [${x.shape}]`);
    for (const p of params) if (p.shape.length !== 1 || p.shape[0] !== x.shape[1]) fail(`batchnorm parameter of shape [${p.shape}] does not match the ${x.shape[1]} channels of input [${x.shape}]`);
    return [{ shape: [...x.shape], dtype: x.dtype }];
  },
  reference([x, gamma, beta, mean, variance], attrs) {
    const C = x.shape[1], inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
    const out = newHost([...x.shape], x.dtype);
    for (let i = 0; i < x.data.length; i++) {
      const c = Math.floor(i / inner) % C;
      const scale = Number(gamma.data[c]) / Math.sqrt(Number(variance.data[c]) + (attrs.eps as number));
      out.data[i] = (Number(x.data[i]) - Number(mean.data[c])) * scale + Number(beta.data[c]);
    }
    return [out];
  },
  decompose(g, node) {
    const [x, gamma, beta, mean, variance] = node.inputs;
    const perChannel = [x.shape[1], ...x.shape.slice(2).map(() => 1)];
    const at = (op: string, inputs: typeof node.inputs, attrs = {}) => g.insertBefore(node, op, inputs, attrs, `${node.name}/${op}`).outputs[0];
    const channel = (v: (typeof node.inputs)[number]) => at("reshape", [v], { shape: perChannel });
    const eps = g.addConstant({ shape: [], dtype: x.dtype, data: new Float32Array([node.attrs.eps as number]) }, `${node.name}/eps`);
    const scale = at("div", [channel(gamma), at("sqrt", [at("add", [channel(variance), eps])])]);
    return [at("add", [at("mul", [at("sub", [x, channel(mean)]), scale]), channel(beta)])];
  },
  // y = (x - mean)·γ·s + β with s = (var + eps)^-½, per channel; the statistics get gradients too
  grad({ inputs: [x, gamma, , mean, variance], attrs, grad: g, needs }) {
    const channel = (t: Tensor) => t.reshape([x.shape[1], ...x.shape.slice(2).map(() => 1)]);
    const perChannel = (t: Tensor) => t.sum([0, ...x.shape.slice(2).map((_, i) => i + 2)]);
    const invStd = variance.add(attrs.eps as number).sqrt().reciprocal();
    const centered = x.sub(channel(mean));
    return [
      needs[0] ? g.mul(channel(gamma.mul(invStd))) : null,
      needs[1] ? perChannel(g.mul(centered)).mul(invStd) : null,
      needs[2] ? perChannel(g) : null,
      needs[3] ? perChannel(g).mul(gamma).mul(invStd).neg() : null,
      needs[4] ? perChannel(g.mul(centered)).mul(gamma).mul(invStd.mul(invStd).mul(invStd)).mul(-0.5) : null,
    ];
  },
});
