import { fail } from "../errors.js";
import type { DType } from "../ir/dtype.js";
import type { Attrs, TensorType } from "../ir/graph.js";
import { broadcastMap, broadcastShapes } from "../ir/shape.js";
import { defineOp, type ElementwiseCode, type Epilogue } from "./registry.js";

/**
 * Element-wise ops. Each is one line of math on the host and one scalar (and, where SIMD has it, one
 * vector) expression template; the code generator fuses chains of them into a single generated loop.
 */

const num = (x: number): string => {
  if (Number.isNaN(x)) return "<f32>NaN";
  if (!Number.isFinite(x)) return x > 0 ? "<f32>Infinity" : "<f32>-Infinity";
  const s = String(Math.fround(x));
  return `<f32>${/[.e]/.test(s) ? s : s + ".0"}`;
};
const attr = (attrs: Attrs, key: string): number => attrs[key] as number;

interface Spec {
  arity: number;
  fn(xs: number[], attrs: Attrs): number;
  scalar(a: string[], attrs: Attrs): string;
  vector?(a: string[], attrs: Attrs): string;
  /** output dtype; default: the inputs' common dtype */
  out?: DType;
  /** input dtypes; default: all inputs share one dtype */
  inputs?(types: TensorType[]): void;
  epilogue?(attrs: Attrs): Epilogue;
}

function elementwise(name: string, spec: Spec): void {
  const code: ElementwiseCode = { scalar: spec.scalar, vector: spec.vector };
  defineOp({
    name,
    infer(inputs) {
      if (inputs.length !== spec.arity) fail(`${name} takes ${spec.arity} inputs, got ${inputs.length}`);
      if (spec.inputs) spec.inputs(inputs);
      else {
        const bad = inputs.find((t) => t.dtype !== inputs[0].dtype);
        if (bad) fail(`${name}: dtypes ${inputs[0].dtype} and ${bad.dtype} differ`);
      }
      return [{ shape: broadcastShapes(...inputs.map((t) => t.shape)), dtype: spec.out ?? inputs[inputs.length - 1].dtype }];
    },
    reference: (inputs, attrs) => [
      broadcastMap(inputs, spec.out ?? inputs[inputs.length - 1].dtype, (xs) => spec.fn(xs, attrs)),
    ],
    elementwise: code,
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

const unary = (fn: (x: number, attrs: Attrs) => number, scalar: (a: string, attrs: Attrs) => string, vector?: (a: string, attrs: Attrs) => string, epilogue?: Spec["epilogue"]): Spec => ({
  arity: 1,
  fn: (xs, attrs) => fn(xs[0], attrs),
  scalar: (a, attrs) => scalar(a[0], attrs),
  vector: vector && ((a, attrs) => vector(a[0], attrs)),
  epilogue,
});

const binary = (fn: (x: number, y: number) => number, scalar: (a: string, b: string) => string, vector?: (a: string, b: string) => string): Spec => ({
  arity: 2,
  fn: (xs) => fn(xs[0], xs[1]),
  scalar: (a) => scalar(a[0], a[1]),
  vector: vector && ((a) => vector(a[0], a[1])),
});

// --- arithmetic ---------------------------------------------------------------------------------
elementwise("add", binary((x, y) => x + y, (a, b) => `(${a} + ${b})`, (a, b) => `f32x4.add(${a}, ${b})`));
elementwise("sub", binary((x, y) => x - y, (a, b) => `(${a} - ${b})`, (a, b) => `f32x4.sub(${a}, ${b})`));
elementwise("mul", binary((x, y) => x * y, (a, b) => `(${a} * ${b})`, (a, b) => `f32x4.mul(${a}, ${b})`));
elementwise("div", binary((x, y) => x / y, (a, b) => `(${a} / ${b})`, (a, b) => `f32x4.div(${a}, ${b})`));
elementwise("pow", binary((x, y) => Math.fround(x) ** Math.fround(y), (a, b) => `Mathf.pow(${a}, ${b})`));
elementwise("maximum", binary((x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y)), (a, b) => `max<f32>(${a}, ${b})`, (a, b) => `f32x4.max(${a}, ${b})`));
elementwise("minimum", binary((x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y)), (a, b) => `min<f32>(${a}, ${b})`, (a, b) => `f32x4.min(${a}, ${b})`));

elementwise("neg", unary((x) => -x, (a) => `(-${a})`, (a) => `f32x4.neg(${a})`));
elementwise("abs", unary(Math.abs, (a) => `abs<f32>(${a})`, (a) => `f32x4.abs(${a})`));
elementwise("sqrt", unary(Math.sqrt, (a) => `sqrt<f32>(${a})`, (a) => `f32x4.sqrt(${a})`));
elementwise("reciprocal", unary((x) => 1 / x, (a) => `(<f32>1.0 / ${a})`, (a) => `f32x4.div(f32x4.splat(1.0), ${a})`));
elementwise("exp", unary(Math.exp, (a) => `expScalar(${a})`, (a) => `expVec(${a})`));
elementwise("log", unary(Math.log, (a) => `logScalar(${a})`, (a) => `logVec(${a})`));
elementwise("erf", unary(erf, (a) => `erfScalar(${a})`, (a) => `erfVec(${a})`));
elementwise("sin", unary(Math.sin, (a) => `Mathf.sin(${a})`));
elementwise("cos", unary(Math.cos, (a) => `Mathf.cos(${a})`));
elementwise("floor", unary(Math.floor, (a) => `floor<f32>(${a})`, (a) => `f32x4.floor(${a})`));
elementwise("ceil", unary(Math.ceil, (a) => `ceil<f32>(${a})`, (a) => `f32x4.ceil(${a})`));
/** round half to even, like numpy, PyTorch and ONNX */
elementwise("round", unary((x) => { const r = Math.round(x); return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r; }, (a) => `nearest<f32>(${a})`, (a) => `f32x4.nearest(${a})`));
elementwise("sign", unary((x) => (x > 0 ? 1 : x < 0 ? -1 : x), (a) => `(${a} > 0 ? <f32>1.0 : ${a} < 0 ? <f32>-1.0 : ${a})`));
elementwise("softplus", unary((x) => (x > 20 ? x : Math.log1p(Math.exp(x))), (a) => `(${a} > <f32>20.0 ? ${a} : logScalar(<f32>1.0 + expScalar(${a})))`));

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

function activation(name: keyof typeof ACT, params: (attrs: Attrs) => [number, number] = () => [0, 0]): void {
  const epilogue = (attrs: Attrs): Epilogue => {
    const [p0, p1] = params(attrs);
    return { act: ACT[name], p0, p1 };
  };
  const args = (a: string, attrs: Attrs) => {
    const e = epilogue(attrs);
    return `${a}, ${e.act}, ${num(e.p0)}, ${num(e.p1)}`;
  };
  elementwise(name, unary(
    (x, attrs) => applyEpilogue(x, epilogue(attrs)),
    (a, attrs) => `actScalar(${args(a, attrs)})`,
    (a, attrs) => `actVec(${args(a, attrs)})`,
    epilogue,
  ));
}
activation("relu");
activation("clamp", (a) => [attr(a, "min") ?? -Infinity, attr(a, "max") ?? Infinity]);
activation("leakyRelu", (a) => [attr(a, "alpha") ?? 0.01, 0]);
activation("sigmoid");
activation("tanh");
activation("silu");
activation("hardswish");
activation("gelu");
activation("hardsigmoid", (a) => [attr(a, "alpha") ?? 1 / 6, attr(a, "beta") ?? 0.5]);
activation("elu", (a) => [attr(a, "alpha") ?? 1, 0]);

// --- comparisons and selection (bool results stored as one byte) --------------------------------
const compare = (fn: (x: number, y: number) => boolean, op: string): Spec => ({
  arity: 2,
  out: "bool",
  fn: (xs) => (fn(xs[0], xs[1]) ? 1 : 0),
  scalar: (a) => `<u8>(${a[0]} ${op} ${a[1]})`,
});
elementwise("eq", compare((x, y) => x === y, "=="));
elementwise("ne", compare((x, y) => x !== y, "!="));
elementwise("lt", compare((x, y) => x < y, "<"));
elementwise("le", compare((x, y) => x <= y, "<="));
elementwise("gt", compare((x, y) => x > y, ">"));
elementwise("ge", compare((x, y) => x >= y, ">="));
elementwise("where", {
  arity: 3,
  fn: (xs) => (xs[0] ? xs[1] : xs[2]),
  scalar: (a) => `(${a[0]} ? ${a[1]} : ${a[2]})`,
  inputs(types) {
    if (types[0].dtype !== "bool") fail(`where: the condition must be bool, got ${types[0].dtype}`);
    if (types[1].dtype !== types[2].dtype) fail(`where: dtypes ${types[1].dtype} and ${types[2].dtype} differ`);
  },
});

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
    const out = { shape: [...x.shape], dtype: x.dtype, data: new Float32Array(x.data.length) };
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
});
