import { fail } from "../errors.js";
import { DTYPES, numel } from "../ir/dtype.js";
import type { Attrs, HostTensor } from "../ir/graph.js";
import { newHost, normalizeAxis, shapeStr, writeNum } from "../ir/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { floatLiteral } from "./elementwise.js";
import { defineOp, type GradArgs, type LowerContext } from "./registry.js";
import { emitPermute, permuteHost } from "./shape.js";

/**
 * Reductions, arg-reductions, softmax and layer norm: kernels that see their input as a
 * [outer, R, inner] view and work along the middle axis.
 */

export const REDUCE_KINDS = ["sum", "mean", "max", "min", "prod", "sumSquares", "l1", "logSumExp"] as const;
export type ReduceKind = (typeof REDUCE_KINDS)[number];

function reduceValues(kind: ReduceKind, xs: Float64Array): number {
  let acc: number;
  switch (kind) {
    case "sum": case "mean": acc = 0; for (const x of xs) acc += x; return kind === "mean" ? acc / xs.length : acc;
    case "max": acc = -Infinity; for (const x of xs) acc = x > acc || Number.isNaN(x) ? x : acc; return acc;
    case "min": acc = Infinity; for (const x of xs) acc = x < acc || Number.isNaN(x) ? x : acc; return acc;
    case "prod": acc = 1; for (const x of xs) acc *= x; return acc;
    case "sumSquares": acc = 0; for (const x of xs) acc += x * x; return acc;
    case "l1": acc = 0; for (const x of xs) acc += Math.abs(x); return acc;
    case "logSumExp": {
      let m = -Infinity;
      for (const x of xs) m = Math.max(m, x);
      if (!Number.isFinite(m)) return m;
      acc = 0;
      for (const x of xs) acc += Math.exp(x - m);
      return m + Math.log(acc);
    }
  }
}

/** kinds whose result is not an integer for integer inputs */
const FLOAT_ONLY_KINDS: ReduceKind[] = ["mean", "logSumExp"];

/**
 * A generated reduction loop for the dtypes the f32 kernel does not cover (float64, integers): one
 * accumulator of the input's type per output element, logSumExp in two passes (max, then the sum).
 */
function emitReduceLoop(ctx: LowerContext, src: number, dst: number, outer: number, R: number, inner: number, kind: ReduceKind, t: string, bytes: number): void {
  const isFloat = t === "f32" || t === "f64";
  const M = t === "f64" ? "Math" : "Mathf";
  const lowest = isFloat ? `<${t}>-Infinity` : `${t}.MIN_VALUE`, highest = isFloat ? `<${t}>Infinity` : `${t}.MAX_VALUE`;
  const init = { sum: "0", mean: "0", prod: "1", sumSquares: "0", l1: "0", max: lowest, min: highest, logSumExp: "0" }[kind];
  const step = {
    sum: "acc + x", mean: "acc + x", prod: "acc * x", sumSquares: "acc + x * x", l1: `acc + abs<${t}>(x)`,
    // NaN wins, as in the f32 kernel
    max: isFloat ? `x > acc || x != x ? x : acc` : `x > acc ? x : acc`,
    min: isFloat ? `x < acc || x != x ? x : acc` : `x < acc ? x : acc`,
    logSumExp: `acc + ${M}.exp(x - m)`,
  }[kind];
  const at = `${src} + ((o * ${R} + r) * ${inner} + i) * ${bytes}`;
  ctx.emit(`for (let o: usize = 0; o < ${outer}; o++) for (let i: usize = 0; i < ${inner}; i++) {`);
  if (kind === "logSumExp") {
    ctx.emit(`let m: ${t} = <${t}>-Infinity;`);
    ctx.emit(`for (let r: usize = 0; r < ${R}; r++) m = max<${t}>(m, load<${t}>(${at}));`);
  }
  ctx.emit(`let acc: ${t} = <${t}>(${init});`);
  ctx.emit(`for (let r: usize = 0; r < ${R}; r++) { const x = load<${t}>(${at}); acc = <${t}>(${step}); }`);
  const result = kind === "mean" ? `acc / <${t}>${R}` : kind === "logSumExp" ? `(${M}.abs(m) == <${t}>Infinity ? m : m + ${M}.log(acc))` : "acc";
  ctx.emit(`store<${t}>(${dst} + (o * ${inner} + i) * ${bytes}, <${t}>(${result}));`);
  ctx.emit(`}`);
}

/** The [outer, R, inner] view of `shape` around the axis range [a, b]. */
export function around(shape: number[], a: number, b: number): [number, number, number] {
  return [numel(shape.slice(0, a)), numel(shape.slice(a, b + 1)), numel(shape.slice(b + 1))];
}

/** Applies `fn` to every line along the middle axis of a [outer, R, inner] view, writing `width` results per line. */
function forEachLine(x: HostTensor, outer: number, R: number, inner: number, out: HostTensor, width: number, fn: (line: Float64Array) => ArrayLike<number>): void {
  const line = new Float64Array(R);
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
    for (let r = 0; r < R; r++) line[r] = Number(x.data[(o * R + r) * inner + i]);
    const res = fn(line);
    for (let r = 0; r < width; r++) writeNum(out.data, (o * width + r) * inner + i, res[r]);
  }
}

function reducedShape(shape: number[], axes: number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

function axesOf(attrs: Attrs, rank: number): number[] {
  const axes = (attrs.axes as number[] | undefined) ?? [...Array(rank).keys()];
  const norm = [...new Set(axes.map((a) => normalizeAxis(a, rank)))].sort((a, b) => a - b);
  return norm;
}

/** Reduced axes moved last, so any axis set becomes one contiguous range. */
function permutationFor(rank: number, axes: number[]): number[] {
  return [...[...Array(rank).keys()].filter((d) => !axes.includes(d)), ...axes];
}
const isContiguousRange = (axes: number[]): boolean => axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);

/**
 * dL/dx of a reduction: g and y reshaped to keep the reduced axes as size 1, so they broadcast over x.
 * max/min split the gradient evenly between tied extremes (PyTorch's amax/amin); prod handles zeros exactly.
 */
function reduceGrad({ inputs: [x], output, attrs, grad }: GradArgs): Tensor {
  const axes = axesOf(attrs, x.ndim);
  const keep = reducedShape(x.shape, axes, true);
  const g = grad.reshape(keep), y = output.reshape(keep);
  const one = Tensor.ones([], x.dtype);
  switch (attrs.kind as ReduceKind) {
    case "sum": return g.expand(x.shape);
    case "mean": return g.mul(numel(keep) / x.size).expand(x.shape);
    case "max": case "min": {
      const hits = Tensor.where(x.eq(y), one, 0);
      return hits.mul(g.div(hits.sum(axes, true)));
    }
    case "prod": {
      // y/x where x is not 0; at a zero, the product of the others (0 unless it is the only zero)
      const zero = x.eq(0);
      const othersAtZero = Tensor.where(zero, 1, x).prod(axes, true);
      const loneZero = Tensor.where(zero, one, 0).sum(axes, true).eq(1);
      return g.mul(Tensor.where(zero, Tensor.where(loneZero, othersAtZero, 0), y.div(x)));
    }
    case "sumSquares": return g.mul(x).mul(2);
    case "l1": return g.mul(x.sign());
    case "logSumExp": return g.mul(x.sub(y).exp());
  }
}

defineOp({
  name: "reduce",
  infer([x], attrs) {
    if (!REDUCE_KINDS.includes(attrs.kind as ReduceKind)) fail(`unknown reduction '${attrs.kind}'`);
    return [{ shape: reducedShape(x.shape, axesOf(attrs, x.shape.length), Boolean(attrs.keepdim)), dtype: x.dtype }];
  },
  reference([x], attrs) {
    const axes = axesOf(attrs, x.shape.length);
    const perm = permutationFor(x.shape.length, axes);
    const moved = perm.map((d) => x.shape[d]);
    const src = isContiguousRange(axes) ? x : permuteHost(x, perm);
    const [outer, R, inner] = isContiguousRange(axes)
      ? around(x.shape, axes[0] ?? 0, axes[axes.length - 1] ?? -1)
      : around(moved, moved.length - axes.length, moved.length - 1);
    const out = newHost(reducedShape(x.shape, axes, Boolean(attrs.keepdim)), x.dtype);
    forEachLine(src, outer, R, inner, out, 1, (line) => [reduceValues(attrs.kind as ReduceKind, line)]);
    return [out];
  },
  scratchBytes(node) {
    const axes = axesOf(node.attrs, node.inputs[0].shape.length);
    return isContiguousRange(axes) ? 0 : node.inputs[0].bytes;
  },
  lower(ctx, node) {
    const x = node.inputs[0];
    const axes = axesOf(node.attrs, x.shape.length);
    const kind = node.attrs.kind as ReduceKind;
    const bytes = DTYPES[x.dtype].bytes;
    const emit = (src: number, outer: number, R: number, inner: number) => {
      if (x.dtype === "float32") ctx.call("reduce", "reduce", [src, ctx.ptr(node.outputs[0]), outer, R, inner, REDUCE_KINDS.indexOf(kind)]);
      else emitReduceLoop(ctx, src, ctx.ptr(node.outputs[0]), outer, R, inner, kind, DTYPES[x.dtype].as, bytes);
    };
    if (isContiguousRange(axes)) {
      const [outer, R, inner] = around(x.shape, axes[0] ?? 0, axes[axes.length - 1] ?? -1);
      return emit(ctx.ptr(x), outer, R, inner);
    }
    const perm = permutationFor(x.shape.length, axes);
    emitPermute(ctx, x.shape, perm, ctx.ptr(x), ctx.scratch(node), bytes);
    const moved = perm.map((d) => x.shape[d]);
    const [outer, R] = around(moved, moved.length - axes.length, moved.length - 1);
    emit(ctx.scratch(node), outer, R, 1);
  },
  compiledDTypes: (node) => {
    const t = node.inputs[0].dtype;
    const kind = node.attrs.kind as ReduceKind;
    // bool max/min are any/all
    if (t === "bool") return kind === "max" || kind === "min";
    return t === "float32" || t === "float64" || !FLOAT_ONLY_KINDS.includes(kind);
  },
  grad: (args) => [reduceGrad(args)],
});

// --- argmax / argmin: int32 indices (wasm32 has no use for int64 offsets) -------------------------
defineOp({
  name: "argreduce",
  infer([x], attrs) {
    const axis = normalizeAxis(attrs.axis as number, x.shape.length);
    return [{ shape: reducedShape(x.shape, [axis], Boolean(attrs.keepdim)), dtype: "int32" }];
  },
  reference([x], attrs) {
    const axis = normalizeAxis(attrs.axis as number, x.shape.length);
    const [outer, R, inner] = around(x.shape, axis, axis);
    const out = newHost(reducedShape(x.shape, [axis], Boolean(attrs.keepdim)), "int32");
    const better = attrs.isMin ? (a: number, b: number) => a < b : (a: number, b: number) => a > b;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
      let best = 0, bestV = Number(x.data[o * R * inner + i]);
      for (let r = 1; r < R; r++) {
        const v = Number(x.data[(o * R + r) * inner + i]);
        if (better(v, bestV) || (attrs.selectLast && v === bestV)) { best = r; bestV = v; }
      }
      out.data[o * inner + i] = best;
    }
    return [out];
  },
  lower(ctx, node) {
    const x = node.inputs[0];
    const axis = normalizeAxis(node.attrs.axis as number, x.shape.length);
    const [outer, R, inner] = around(x.shape, axis, axis);
    ctx.call("reduce", "argreduce", [ctx.ptr(x), ctx.ptr(node.outputs[0]), outer, R, inner, node.attrs.isMin ? 1 : 0, node.attrs.selectLast ? 1 : 0]);
  },
  compiledDTypes: (node) => node.inputs[0].dtype === "float32",
  notDifferentiable: "it returns integer indices, which carry no gradient",
});

// --- softmax / logSoftmax along one axis -----------------------------------------------------------
defineOp({
  name: "softmax",
  infer([x], attrs) {
    normalizeAxis(attrs.axis as number, x.shape.length);
    return [{ ...x, shape: [...x.shape] }];
  },
  reference([x], attrs) {
    const axis = normalizeAxis(attrs.axis as number, x.shape.length);
    const [outer, R, inner] = around(x.shape, axis, axis);
    const out = newHost([...x.shape], x.dtype);
    forEachLine(x, outer, R, inner, out, R, (line) => {
      const m = Math.max(...line);
      let s = 0;
      for (const v of line) s += Math.exp(v - m);
      return line.map((v) => (attrs.log ? v - m - Math.log(s) : Math.exp(v - m) / s));
    });
    return [out];
  },
  inPlace: true,
  lower(ctx, node) {
    const x = node.inputs[0];
    const axis = normalizeAxis(node.attrs.axis as number, x.shape.length);
    ctx.call("softmax", "softmax", [ctx.ptr(x), ctx.ptr(node.outputs[0]), ...around(x.shape, axis, axis), node.attrs.log ? 1 : 0]);
  },
  // softmax: y·(g - Σ g·y); logSoftmax: g - softmax·Σ g
  grad({ output: y, attrs, grad: g }) {
    const axis = attrs.axis as number;
    return [attrs.log ? g.sub(y.exp().mul(g.sum(axis, true))) : y.mul(g.sub(g.mul(y).sum(axis, true)))];
  },
});

// --- layer norm over the trailing dims from `axis` on; optional gamma/beta of that shape -----------
defineOp({
  name: "layernorm",
  infer([x, gamma, beta], attrs) {
    const axis = normalizeAxis(attrs.axis as number, x.shape.length);
    const norm = x.shape.slice(axis);
    for (const p of [gamma, beta]) {
      if (p && numel(p.shape) !== numel(norm)) fail(`layernorm: weight ${shapeStr(p.shape)} does not match normalized shape ${shapeStr(norm)} of input ${shapeStr(x.shape)}`);
    }
    return [{ ...x, shape: [...x.shape] }];
  },
  reference([x, gamma, beta], attrs) {
    const axis = normalizeAxis(attrs.axis as number, x.shape.length);
    const [outer, R] = around(x.shape, axis, x.shape.length - 1);
    const out = newHost([...x.shape], x.dtype);
    const eps = attrs.eps as number;
    forEachLine(x, outer, R, 1, out, R, (line) => {
      let mean = 0, v = 0;
      for (const a of line) mean += a;
      mean /= R;
      for (const a of line) v += (a - mean) ** 2;
      const inv = 1 / Math.sqrt(v / R + eps);
      return line.map((a, r) => (a - mean) * inv * (gamma ? Number(gamma.data[r]) : 1) + (beta ? Number(beta.data[r]) : 0));
    });
    return [out];
  },
  inPlace: true,
  lower(ctx, node) {
    const [x, gamma, beta] = node.inputs;
    const axis = normalizeAxis(node.attrs.axis as number, x.shape.length);
    const [outer, R] = around(x.shape, axis, x.shape.length - 1);
    ctx.call("norm", "layernorm", [ctx.ptr(x), gamma ? ctx.ptr(gamma) : 0, beta ? ctx.ptr(beta) : 0, ctx.ptr(node.outputs[0]), outer, R, floatLiteral(node.attrs.eps as number)]);
  },
  // with x̂ = (x - mean)·r, r = (var + eps)^-½ and h = g·γ: dx = r·(h - mean(h) - x̂·mean(h·x̂))
  grad({ inputs: [x, gamma, beta], attrs, grad: g, needs }) {
    const axis = normalizeAxis(attrs.axis as number, x.ndim);
    const normalized = x.shape.slice(axis);
    const axes = normalized.map((_, i) => axis + i), lead = [...Array(axis).keys()];
    const centered = x.sub(x.mean(axes, true));
    const r = centered.mul(centered).mean(axes, true).add(attrs.eps as number).sqrt().reciprocal();
    const xhat = centered.mul(r);
    const h = gamma ? g.mul(gamma.reshape(normalized)) : g;
    const dx = () => r.mul(h.sub(h.mean(axes, true)).sub(xhat.mul(h.mul(xhat).mean(axes, true))));
    return [
      needs[0] ? dx() : null,
      gamma && needs[1] ? g.mul(xhat).sum(lead).reshape(gamma.shape) : null,
      beta && needs[2] ? g.sum(lead).reshape(beta.shape) : null,
    ];
  },
});
