import { fail } from "../../errors.js";
import { isBigIntArray, numel } from "../../ir/dtype.js";
import { hostArray, normalizeAxis } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import { cast, constValues, extendHandler, modelInputsBehind, need, registerHandlers, type Handler, type OpContext } from "./ops.js";
import { onnxDType } from "./proto.js";

/**
 * Operators composed of registry ops: IsNaN, IsInf, BitShift and Bitwise*, Einsum, integer MatMul, CumProd,
 * LpNormalization, Compress (on a compile-time condition); EyeLike, the window functions and Unique
 * fold to constants.
 */

type Input = Tensor | undefined;

function isInf(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const positive = ctx.attrs.int("detect_positive", 1) === 1, negative = ctx.attrs.int("detect_negative", 1) === 1;
  const none = Tensor.full(t.shape, 0, "bool");
  const pos = positive ? t.eq(Infinity) : none, neg = negative ? t.eq(-Infinity) : none;
  return Tensor.where(pos, pos, neg);
}

/**
 * Einsum as one broadcast product and a sum: each operand takes its diagonal for repeated letters, is
 * permuted to a shared letter order and broadcast, the product is summed over the letters the output lacks.
 */
function einsum(x: Input[], ctx: OpContext): Tensor {
  const operands = x.map((t, i) => t ?? fail(`${ctx.label}: operand ${i} is missing`));
  const equation = ctx.attrs.string("equation").replace(/\s/g, "");
  const [lhs, rhsGiven] = equation.split("->");
  const terms = lhs.split(",");
  if (terms.length !== operands.length) fail(`${ctx.label}: equation '${equation}' has ${terms.length} operands, the node ${operands.length}`);
  // "..." becomes as many fresh upper-case letters as the broadcast dims it covers
  const ellipsisRank = Math.max(0, ...terms.map((term, i) => (term.includes("...") ? operands[i].ndim - (term.length - 3) : 0)));
  const ellipsis = Array.from({ length: ellipsisRank }, (_, i) => String.fromCharCode(65 + i)).join("");
  const letters = terms.map((term, i) => {
    const r = operands[i].ndim - (term.length - (term.includes("...") ? 3 : 0));
    return term.replace("...", ellipsis.slice(ellipsisRank - r));
  });
  let rhs: string;
  if (rhsGiven !== undefined) rhs = rhsGiven.replace("...", ellipsis);
  else {
    const counts = new Map<string, number>();
    for (const l of letters.join("")) counts.set(l, (counts.get(l) ?? 0) + 1);
    rhs = ellipsis + [...counts].filter(([l, n]) => n === 1 && !ellipsis.includes(l)).map(([l]) => l).sort().join("");
  }
  const all = [...new Set([...rhs, ...letters.join("")])];
  const sizes = new Map<string, number>();
  const aligned = operands.map((t, i) => {
    let term = letters[i];
    if (term.length !== t.ndim) fail(`${ctx.label}: operand ${i} has rank ${t.ndim}, but '${terms[i]}' names ${term.length} dims`);
    // a repeated letter takes the diagonal: multiply by the identity and sum one of the two axes away
    for (let at = term.length - 1; at >= 0; at--) {
      const first = term.indexOf(term[at]);
      if (first === at) continue;
      const n = t.shape[at];
      const eye = Tensor.from(Float32Array.from({ length: n * n }, (_, j) => (Math.floor(j / n) === j % n ? 1 : 0)), { shape: [n, n] });
      const eyeShape = t.shape.map((d, j) => (j === first || j === at ? d : 1));
      t = t.mul(cast(eye, t.dtype).reshape(eyeShape)).sum([at]);
      term = term.slice(0, at) + term.slice(at + 1);
    }
    term.split("").forEach((l, j) => {
      const d = t.shape[j];
      if (sizes.has(l) && sizes.get(l) !== d && d !== 1 && sizes.get(l) !== 1) fail(`${ctx.label}: dimension '${l}' is ${sizes.get(l)} in one operand and ${d} in another`);
      if (!sizes.has(l) || sizes.get(l) === 1) sizes.set(l, d);
    });
    const order = all.filter((l) => term.includes(l)).map((l) => term.indexOf(l));
    const permuted = order.some((p, j) => p !== j) ? t.permute(order) : t;
    return permuted.reshape(all.map((l) => (term.includes(l) ? t.shape[term.indexOf(l)] : 1)));
  });
  const product = aligned.reduce((a, b) => a.mul(b));
  const summed = all.map((l, i) => (rhs.includes(l) ? -1 : i)).filter((i) => i >= 0);
  let y = summed.length ? product.sum(summed) : product;
  const kept = all.filter((l) => rhs.includes(l));
  y = y.reshape(kept.map((l) => sizes.get(l)!));
  const order = rhs.split("").map((l) => kept.indexOf(l));
  return order.some((p, j) => p !== j) ? y.permute(order) : y === operands[0] ? y.mul(1) : y;
}

/** Integer MatMul: a broadcast product summed over K (GEMM is float32). */
function integerMatmul(base: Handler): Handler {
  return (x, ctx) => {
    const a = need(x, 0, ctx), b = need(x, 1, ctx);
    if (a.dtype === "float32") return base(x, ctx);
    const a2 = a.ndim === 1 ? a.unsqueeze(0) : a, b2 = b.ndim === 1 ? b.unsqueeze(1) : b;
    let y = a2.unsqueeze(-1).mul(b2.unsqueeze(-3)).sum([-2]);
    if (b.ndim === 1) y = y.squeeze(-1);
    if (a.ndim === 1) y = y.squeeze(b.ndim === 1 ? 0 : -2);
    return y;
  };
}

/** Unique on a compile-time tensor (its outputs' shapes depend on the values): Y, indices, inverse_indices, counts. */
function unique(x: Input[], ctx: OpContext): Tensor[] {
  const t = need(x, 0, ctx);
  if (t.isSymbolic) {
    const inputs = modelInputsBehind(t);
    fail(`${ctx.label}: Unique's output shape depends on its input's values, which must be known at compile time; pin ${inputs.map((n) => `--const ${n}=FILE.npy|VALUE`).join(" ")}`);
  }
  const sorted = ctx.attrs.int("sorted", 1) === 1;
  const axis = ctx.attrs.has("axis") ? normalizeAxis(ctx.attrs.int("axis"), t.ndim) : null;
  const values = constValues(t, "the input", ctx);
  // the slices along the axis (or the elements when flattened), each as a key
  const outer = axis === null ? 1 : numel(t.shape.slice(0, axis)), n = axis === null ? values.length : t.shape[axis], inner = axis === null ? 1 : numel(t.shape.slice(axis + 1));
  const slice = (i: number) => Array.from({ length: outer * inner }, (_, j) => values[Math.floor(j / inner) * n * inner + i * inner + (j % inner)]);
  const slices = Array.from({ length: n }, (_, i) => slice(i));
  const firsts: number[] = [], keys = new Map<string, number>();
  const inverse = slices.map((s, i) => {
    const key = s.join(",");
    if (!keys.has(key)) {
      keys.set(key, firsts.length);
      firsts.push(i);
    }
    return keys.get(key)!;
  });
  let order = firsts.map((_, u) => u);
  const compare = (a: number[], b: number[]) => {
    for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) return a[j] - b[j];
    return 0;
  };
  if (sorted) order = order.sort((p, q) => compare(slices[firsts[p]], slices[firsts[q]]));
  const rank = new Map(order.map((u, r) => [u, r]));
  const counts = order.map((u) => inverse.filter((v) => v === u).length);
  const shape = axis === null ? [order.length] : t.shape.map((d, i) => (i === axis ? order.length : d));
  const data = hostArray(shape, t.dtype);
  order.forEach((u, r) => slices[firsts[u]].forEach((v, j) => {
    const at = axis === null ? r : Math.floor(j / inner) * order.length * inner + r * inner + (j % inner);
    if (isBigIntArray(data)) data[at] = BigInt(v);
    else data[at] = v;
  }));
  const int64 = (v: number[]) => Tensor.from(new BigInt64Array(v.map(BigInt)), { shape: [v.length], dtype: "int64" });
  return [Tensor.from(data, { shape, dtype: t.dtype }), int64(order.map((u) => firsts[u])), int64(inverse.map((u) => rank.get(u)!)), int64(counts)];
}

registerHandlers({
  IsNaN: (x, ctx) => need(x, 0, ctx).ne(need(x, 0, ctx)),
  IsInf: isInf,
  BitShift: (x, ctx) => apply(ctx.attrs.string("direction") === "LEFT" ? "shiftLeft" : "shiftRight", [need(x, 0, ctx), need(x, 1, ctx)], {}),
  BitwiseAnd: (x, ctx) => apply("bitwiseAnd", [need(x, 0, ctx), need(x, 1, ctx)], {}),
  BitwiseOr: (x, ctx) => apply("bitwiseOr", [need(x, 0, ctx), need(x, 1, ctx)], {}),
  BitwiseXor: (x, ctx) => apply("bitwiseXor", [need(x, 0, ctx), need(x, 1, ctx)], {}),
  BitwiseNot: (x, ctx) => apply("bitwiseNot", [need(x, 0, ctx)], {}),
  Einsum: einsum,
  Unique: unique,
});
extendHandler("MatMul", integerMatmul);

/** CumProd: the Hillis–Steele scan of CumSum with products (shifted-in ones), exact for every dtype. */
function cumprod(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const axis = normalizeAxis(constValues(need(x, 1, ctx), "axis", ctx)[0], t.ndim);
  const reverse = ctx.attrs.int("reverse", 0) === 1, exclusive = ctx.attrs.int("exclusive", 0) === 1;
  const n = t.shape[axis];
  const shifted = (v: Tensor, k: number) => {
    const pads = new Array(2 * v.ndim).fill(0);
    pads[axis] = k;
    return apply("pad", [v.slice(axis, 0, n - k)], { pads, value: 1 });
  };
  let y = reverse ? t.flip(axis) : t;
  if (exclusive) y = n > 1 ? shifted(y, 1) : Tensor.ones(y.shape, y.dtype);
  for (let k = 1; k < n; k *= 2) y = y.mul(shifted(y, k));
  if (reverse) y = y.flip(axis);
  return y === t ? y.mul(1) : y;
}

function lpNormalization(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const axis = normalizeAxis(ctx.attrs.int("axis", -1), t.ndim), p = ctx.attrs.int("p", 2);
  if (p !== 1 && p !== 2) fail(`${ctx.label}: p=${p}; LpNormalization takes p 1 or 2`);
  const norm = p === 1 ? t.abs().sum([axis], true) : t.mul(t).sum([axis], true).sqrt();
  // a zero vector stays zero, as in the spec's reference
  return Tensor.where(norm.eq(0), 0, t.div(norm));
}

function eyeLike(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  if (t.ndim !== 2) fail(`${ctx.label}: EyeLike needs a 2-d input, got rank ${t.ndim}`);
  const [rows, cols] = t.shape, k = ctx.attrs.int("k", 0);
  const dtype = ctx.attrs.has("dtype") ? onnxDType(ctx.attrs.int("dtype"), `${ctx.label} dtype`) : t.dtype;
  const data = hostArray([rows, cols], dtype);
  for (let i = 0; i < rows; i++) if (i + k >= 0 && i + k < cols) {
    if (isBigIntArray(data)) data[i * cols + i + k] = 1n;
    else data[i * cols + i + k] = 1;
  }
  return Tensor.from(data, { shape: [rows, cols], dtype });
}

/** Compress: the selected slices, a gather with indices known at compile time (the condition decides the shape). */
function compress(x: Input[], ctx: OpContext): Tensor {
  let t = need(x, 0, ctx);
  const keep = constValues(need(x, 1, ctx), "the condition", ctx);
  let axis = 0;
  if (ctx.attrs.has("axis")) axis = normalizeAxis(ctx.attrs.int("axis"), t.ndim);
  else t = t.reshape([t.size]);
  const picked = keep.slice(0, t.shape[axis]).flatMap((c, i) => (c ? [i] : []));
  if (!picked.length) return Tensor.zeros(t.shape.map((d, i) => (i === axis ? 0 : d)), t.dtype);
  return apply("gather", [t, Tensor.from(new Int32Array(picked), { shape: [picked.length], dtype: "int32" })], { axis });
}

/** Hann, Hamming and Blackman windows: cosine sums of a compile-time size, as the spec's functions define them. */
function cosineWindow(coefficients: number[]): Handler {
  return (x, ctx) => {
    const size = constValues(need(x, 0, ctx), "the window size", ctx)[0];
    const periodic = ctx.attrs.int("periodic", 1) === 1;
    const dtype = onnxDType(ctx.attrs.int("output_datatype", 1), `${ctx.label} output_datatype`);
    const n = periodic ? size : size - 1;
    const data = hostArray([size], dtype);
    for (let i = 0; i < size; i++) {
      const v = coefficients.reduce((s, c, k) => s + (k % 2 ? -c : c) * Math.cos((2 * Math.PI * k * i) / n), 0);
      if (isBigIntArray(data)) data[i] = BigInt(Math.trunc(v));
      else data[i] = v;
    }
    return Tensor.from(data, { shape: [size], dtype });
  };
}

registerHandlers({
  CumProd: cumprod,
  LpNormalization: lpNormalization,
  EyeLike: eyeLike,
  Compress: compress,
  HannWindow: cosineWindow([0.5, 0.5]),
  HammingWindow: cosineWindow([25 / 46, 21 / 46]),
  BlackmanWindow: cosineWindow([0.42, 0.5, 0.08]),
});
