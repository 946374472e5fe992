import { fail } from "../../errors.js";
import { isBigIntArray, numel, type DType } from "../../ir/dtype.js";
import type { Value } from "../../ir/graph.js";
import { broadcastShapes, hostArray, normalizeAxis, shapeStr } from "../../ir/shape.js";
import { apply, Tensor } from "../../tensor/tensor.js";
import type { NodeAttrs } from "./attrs.js";
import { NARROW_INTS, narrowOf, narrowOfCode, type Narrow } from "./narrow.js";
import { onnxDType } from "./proto.js";

/**
 * ONNX operators written with teenygrad's Tensor API, in the manner of tinygrad's onnx.py: on
 * compile-time constants they compute eagerly (that is how Shape → Gather → Concat → Reshape chains
 * fold away), on symbolic tensors they record graph nodes. Each handler is the op's full meaning across
 * the opsets it covers (attributes that became inputs, changed defaults).
 */

export interface OpContext {
  attrs: NodeAttrs;
  opset: number;
  /** "Conv node 'conv1'", for errors */
  label: string;
  /** how many outputs the node asks for */
  outputs: number;
  /** imports the node's graph attribute `attr` (an If branch, a Loop body) on these inputs, in a scope that sees the enclosing graph's names */
  subgraph: (attr: string, inputs: Tensor[]) => Tensor[];
}

type Input = Tensor | undefined;
export type Handler = (x: Input[], ctx: OpContext) => Tensor | Input[];

export const isFloat = (d: DType): boolean => d === "float32" || d === "float64";

export function need(x: Input[], i: number, ctx: OpContext): Tensor {
  const t = x[i];
  if (!t) fail(`${ctx.label}: input ${i} is required`);
  return t;
}

/** Values of an input the op needs at compile time (a shape, axes, pads…). */
export function constValues(t: Tensor, what: string, ctx: OpContext): number[] {
  if (t.isSymbolic) {
    const inputs = modelInputsBehind(t);
    const pin = inputs.map((n) => `--const ${n}=FILE.npy|VALUE`).join(" ");
    fail(`${ctx.label}: ${what} must be known at compile time, but it is computed from the model input${inputs.length > 1 ? "s" : ""} ${inputs.map((n) => `'${n}'`).join(", ")}; pin ${inputs.length > 1 ? "them" : "it"} to a value with ${pin}`);
  }
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** The graph inputs a symbolic tensor is computed from, in graph order: what the user must pin to make it constant. */
export function modelInputsBehind(t: Tensor): string[] {
  const found = new Set<Value>(), seen = new Set<Value>();
  const stack = t.value ? [t.value] : [];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.kind === "input") found.add(v);
    if (v.producer) stack.push(...v.producer.inputs);
  }
  return [...found].sort((a, b) => a.id - b.id).map((v) => v.name);
}

const optionalInts = (t: Input, what: string, ctx: OpContext): number[] | undefined => (t ? constValues(t, what, ctx) : undefined);

export function cast(t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : apply("cast", [t], { to: dtype });
}

export const scalarOf = (x: number, dtype: DType): Tensor => Tensor.full([], x, dtype);

/** A copy that is not the same graph value (a model output may not alias an input or another output). */
export const identityCopy = (t: Tensor): Tensor => apply("cast", [t], { to: t.dtype });

function reshapeTo(x: Tensor, shape: number[]): Tensor {
  if (shape.join() === x.shape.join()) return x;
  return x.reshape(shape);
}

/** ONNX axes input (opset 13+/18+) or attribute; undefined = all axes. */
function axesOf(x: Input[], ctx: OpContext, inputSince: number): number[] | undefined {
  if (ctx.opset >= inputSince) return optionalInts(x[1], "axes", ctx);
  return ctx.attrs.has("axes") ? ctx.attrs.ints("axes") : undefined;
}

const EMPTY_REDUCTION: Record<string, number> = { sum: 0, sumSquares: 0, l1: 0, prod: 1, max: -Infinity, min: Infinity, logSumExp: -Infinity };

function reduce(kind: string, post?: (t: Tensor) => Tensor, pre?: (t: Tensor) => Tensor, inputSince = 18): Handler {
  return (x, ctx) => {
    let t = need(x, 0, ctx);
    let axes = axesOf(x, ctx, inputSince);
    const keep = ctx.attrs.int("keepdims", 1) === 1;
    if (axes && axes.length === 0) axes = undefined;
    if (!axes && ctx.attrs.int("noop_with_empty_axes", 0) === 1) return t;
    const all = axes ?? t.shape.map((_, i) => i);
    const normalized = [...new Set(all.map((a) => normalizeAxis(a, t.ndim)))].sort((a, b) => a - b);
    let y: Tensor;
    if (normalized.some((a) => t.shape[a] === 0)) {
      // an empty reduction is its identity element, whatever the input holds
      const shape = keep ? t.shape.map((d, i) => (normalized.includes(i) ? 1 : d)) : t.shape.filter((_, i) => !normalized.includes(i));
      y = Tensor.full(shape, EMPTY_REDUCTION[kind] ?? NaN, t.dtype);
    } else {
      if (pre) t = pre(t);
      y = normalized.length ? apply("reduce", [t], { kind, axes: normalized, keepdim: keep }) : t;
    }
    if (post) y = post(y);
    return y;
  };
}

function variadic(fn: (a: Tensor, b: Tensor) => Tensor): Handler {
  return (x, ctx) => {
    const ts = x.filter((t): t is Tensor => t !== undefined);
    if (!ts.length) fail(`${ctx.label}: needs at least one input`);
    const out = ts.reduce((a, b) => fn(a, b));
    return out === ts[0] ? identityCopy(out) : out;
  };
}

const binary = (fn: (a: Tensor, b: Tensor) => Tensor): Handler => (x, ctx) => fn(need(x, 0, ctx), need(x, 1, ctx));
const unary = (fn: (a: Tensor, ctx: OpContext) => Tensor): Handler => (x, ctx) => fn(need(x, 0, ctx), ctx);
const op = (name: string, attrs: (ctx: OpContext) => Record<string, unknown> = () => ({})): Handler =>
  (x, ctx) => apply(name, [need(x, 0, ctx)], attrs(ctx));

/** Kernel sizes, strides and dilations: positive and small enough for 32-bit address arithmetic. */
export function windowInts(values: number[], what: string, ctx: OpContext): number[] {
  const bad = values.find((v) => !Number.isInteger(v) || v < 1 || v > 2 ** 20);
  if (bad !== undefined) fail(`${ctx.label}: ${what} [${values}] must hold integers from 1 to ${2 ** 20}, got ${bad}`);
  return values;
}

/** SAME_UPPER / SAME_LOWER / VALID / NOTSET → explicit [begin…, end…] pads. */
export function spatialPads(ctx: OpContext, input: number[], kernel: number[], strides: number[], dilations: number[]): number[] {
  const autoPad = ctx.attrs.string("auto_pad", "NOTSET");
  const n = kernel.length;
  if (autoPad === "NOTSET") {
    const pads = ctx.attrs.ints("pads", new Array(2 * n).fill(0));
    if (pads.length !== 2 * n) fail(`${ctx.label}: pads has ${pads.length} values, expected ${2 * n}`);
    return pads;
  }
  if (autoPad === "VALID") return new Array(2 * n).fill(0);
  if (autoPad !== "SAME_UPPER" && autoPad !== "SAME_LOWER") fail(`${ctx.label}: unknown auto_pad '${autoPad}'`);
  const begin: number[] = [], end: number[] = [];
  for (let i = 0; i < n; i++) {
    const out = Math.ceil(input[i] / strides[i]);
    const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - input[i]);
    const small = Math.floor(total / 2);
    begin.push(autoPad === "SAME_UPPER" ? small : total - small);
    end.push(autoPad === "SAME_UPPER" ? total - small : small);
  }
  return [...begin, ...end];
}

/** Runs a 1-d or 2-d spatial op through its 2-d form. */
function spatial2d(x: Tensor, ctx: OpContext, run: (x4: Tensor, to2d: (v: number[], fill: number) => number[]) => Tensor): Tensor {
  const spatialRank = x.ndim - 2;
  if (spatialRank === 2) return run(x, (v) => v);
  if (spatialRank === 1) {
    const to2d = (v: number[], fill: number) => (v.length === 2 ? [fill, v[0], fill, v[1]] : [fill, v[0]]);
    return run(x.unsqueeze(2), to2d).squeeze(2);
  }
  fail(`${ctx.label}: ${spatialRank}-d spatial inputs (shape ${shapeStr(x.shape)}) are not supported; 1-d and 2-d are`);
}

function conv(x: Input[], ctx: OpContext): Tensor {
  const input = need(x, 0, ctx), w = need(x, 1, ctx), bias = x[2];
  const spatial = input.shape.slice(2);
  const kernel = windowInts(ctx.attrs.ints("kernel_shape", w.shape.slice(2)), "kernel_shape", ctx);
  const strides = windowInts(ctx.attrs.ints("strides", kernel.map(() => 1)), "strides", ctx);
  const dilations = windowInts(ctx.attrs.ints("dilations", kernel.map(() => 1)), "dilations", ctx);
  const pads = spatialPads(ctx, spatial, kernel, strides, dilations);
  const group = ctx.attrs.int("group", 1);
  return spatial2d(input, ctx, (x4, to2d) => {
    const w4 = w.ndim === 3 ? w.unsqueeze(2) : w;
    const attrs = { stride: to2d(strides, 1), pads: to2d(pads, 0), dilation: to2d(dilations, 1), groups: group };
    return apply("conv2d", bias ? [x4, w4, bias] : [x4, w4], attrs);
  });
}

function pool(kind: "maxpool2d" | "avgpool2d"): Handler {
  return (x, ctx) => {
    if (ctx.outputs > 1) fail(`${ctx.label}: the Indices output is not supported`);
    ctx.attrs.unsupported("storage_order");
    const input = need(x, 0, ctx);
    const kernel = windowInts(ctx.attrs.ints("kernel_shape"), "kernel_shape", ctx);
    const strides = windowInts(ctx.attrs.ints("strides", kernel.map(() => 1)), "strides", ctx);
    const dilations = windowInts(ctx.attrs.ints("dilations", kernel.map(() => 1)), "dilations", ctx);
    const pads = spatialPads(ctx, input.shape.slice(2), kernel, strides, dilations);
    const ceilMode = ctx.attrs.int("ceil_mode", 0) === 1;
    return spatial2d(input, ctx, (x4, to2d) => {
      const attrs: Record<string, unknown> = { kernel: to2d(kernel, 1), stride: to2d(strides, 1), pads: to2d(pads, 0), dilation: to2d(dilations, 1), ceilMode };
      if (kind === "avgpool2d") attrs.countIncludePad = ctx.attrs.int("count_include_pad", 0) === 1;
      if (kind === "avgpool2d" && dilations.some((d) => d !== 1)) return dilatedAvgPool(x4, attrs);
      return apply(kind, [x4], attrs);
    });
  };
}

/**
 * Dilated average pooling as a depthwise convolution with a ones kernel, divided by the count of
 * positions each window covers (a compile-time constant: the same pooling of a ones image).
 */
function dilatedAvgPool(x4: Tensor, attrs: Record<string, unknown>): Tensor {
  const [, C, H, W] = x4.shape;
  const [kh, kw] = attrs.kernel as number[];
  const pads = attrs.pads as number[];
  const ones = Tensor.ones([C, 1, kh, kw], x4.dtype);
  const convAttrs = { stride: attrs.stride, pads: attrs.ceilMode ? ceilPads(x4.shape, attrs) : pads, dilation: attrs.dilation, groups: C };
  const sums = apply("conv2d", [x4, ones], convAttrs);
  // counting the padded extent: a ones image grown by the pads, pooled without padding
  const image = attrs.countIncludePad ? apply("pad", [Tensor.ones([1, C, H, W], x4.dtype)], { pads: [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], value: 1 }) : Tensor.ones([1, C, H, W], x4.dtype);
  const countPads = attrs.countIncludePad ? (convAttrs.pads as number[]).map((p, i) => p - pads[i]) : convAttrs.pads;
  const counts = apply("conv2d", [image, ones], { ...convAttrs, pads: countPads });
  return sums.div(counts);
}

/** Extra end padding so a floor-mode convolution yields ceil-mode's output size. */
function ceilPads(shape: number[], attrs: Record<string, unknown>): number[] {
  const [kh, kw] = attrs.kernel as number[], [sh, sw] = attrs.stride as number[], [dh, dw] = attrs.dilation as number[];
  const pads = [...(attrs.pads as number[])];
  const extra = (size: number, k: number, s: number, d: number, p0: number, p1: number) => {
    const span = (k - 1) * d + 1, total = size + p0 + p1;
    const out = Math.ceil((total - span) / s) + 1;
    // the last window must start inside the input or the begin padding
    const fixed = (out - 1) * s >= size + p0 ? out - 1 : out;
    return Math.max(0, (fixed - 1) * s + span - total);
  };
  pads[2] += extra(shape[2], kh, sh, dh, pads[0], pads[2]);
  pads[3] += extra(shape[3], kw, sw, dw, pads[1], pads[3]);
  return pads;
}

function softmaxLike(fn: (t: Tensor, axis: number) => Tensor): Handler {
  return (x, ctx) => {
    const t = need(x, 0, ctx);
    // before opset 13 the input was coerced to 2-d at `axis` (default 1)
    if (ctx.opset < 13) {
      const axis = normalizeAxis(ctx.attrs.int("axis", 1), t.ndim);
      const flat = reshapeTo(t, [numel(t.shape.slice(0, axis)), numel(t.shape.slice(axis))]);
      return reshapeTo(fn(flat, 1), t.shape);
    }
    return fn(t, normalizeAxis(ctx.attrs.int("axis", -1), t.ndim));
  };
}

function hardmax(t: Tensor, axis: number): Tensor {
  const idx = t.argmax(axis, true);
  const positions = Tensor.arange(0, t.shape[axis], 1, "int32").reshape(t.shape.map((d, i) => (i === axis ? d : 1)));
  return cast(idx.eq(positions), t.dtype);
}

function gemm(x: Input[], ctx: OpContext): Tensor {
  let a = need(x, 0, ctx), b = need(x, 1, ctx);
  if (ctx.attrs.int("transA", 0)) a = a.transpose(0, 1);
  if (ctx.attrs.int("transB", 0)) b = b.transpose(0, 1);
  const alpha = ctx.attrs.float("alpha", 1), beta = ctx.attrs.float("beta", 1);
  let y = a.matmul(b);
  if (alpha !== 1) y = y.mul(alpha);
  const c = x[2];
  if (c && beta !== 0) y = y.add(beta === 1 ? c : c.mul(beta));
  return y;
}

function matmul(a: Tensor, b: Tensor): Tensor {
  const a2 = a.ndim === 1 ? a.unsqueeze(0) : a, b2 = b.ndim === 1 ? b.unsqueeze(1) : b;
  let y = a2.matmul(b2);
  if (b.ndim === 1) y = y.squeeze(-1);
  if (a.ndim === 1) y = y.squeeze(a.ndim === 1 && b.ndim === 1 ? 0 : -2);
  return y;
}

function reshape(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const shape = ctx.opset >= 5 ? constValues(need(x, 1, ctx), "the target shape", ctx) : ctx.attrs.ints("shape");
  const allowZero = ctx.attrs.int("allowzero", 0) === 1;
  const resolved = shape.map((d, i) => (d === 0 && !allowZero ? t.shape[i] : d));
  if (resolved.some((d) => d === undefined)) fail(`${ctx.label}: shape ${shapeStr(shape)} copies a dimension that input ${shapeStr(t.shape)} lacks`);
  return t.reshape(resolved);
}

function unsqueeze(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const axes = ctx.opset >= 13 ? constValues(need(x, 1, ctx), "axes", ctx) : ctx.attrs.ints("axes");
  const rank = t.ndim + axes.length;
  const norm = axes.map((a) => normalizeAxis(a, rank)).sort((a, b) => a - b);
  if (new Set(norm).size !== norm.length) fail(`${ctx.label}: repeated axes [${axes}]`);
  const shape = [...t.shape];
  for (const a of norm) shape.splice(a, 0, 1);
  return reshapeTo(t, shape);
}

function squeeze(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const axes = axesOf(x, ctx, 13);
  const drop = axes ? axes.map((a) => normalizeAxis(a, t.ndim)) : t.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  for (const a of drop) if (t.shape[a] !== 1) fail(`${ctx.label}: cannot squeeze axis ${a} of size ${t.shape[a]}`);
  return reshapeTo(t, t.shape.filter((_, i) => !drop.includes(i)));
}

function slice(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const starts = ctx.opset >= 10 ? constValues(need(x, 1, ctx), "starts", ctx) : ctx.attrs.ints("starts");
  const ends = ctx.opset >= 10 ? constValues(need(x, 2, ctx), "ends", ctx) : ctx.attrs.ints("ends");
  const axes = (ctx.opset >= 10 ? optionalInts(x[3], "axes", ctx) : ctx.attrs.ints("axes", [])) ?? [];
  const steps = (ctx.opset >= 10 ? optionalInts(x[4], "steps", ctx) : undefined) ?? starts.map(() => 1);
  const useAxes = axes.length ? axes : starts.map((_, i) => i);
  if (starts.length !== ends.length || useAxes.length !== starts.length || steps.length !== starts.length) fail(`${ctx.label}: starts, ends, axes and steps differ in length`);
  const s = t.shape.map(() => 0), e = [...t.shape], st = t.shape.map(() => 1);
  useAxes.forEach((axis, i) => {
    const a = normalizeAxis(axis, t.ndim), n = t.shape[a], step = steps[i];
    if (step === 0) fail(`${ctx.label}: step 0 on axis ${axis}`);
    let start = starts[i] < 0 ? starts[i] + n : starts[i];
    let end = ends[i] < 0 ? ends[i] + n : ends[i];
    if (step > 0) {
      start = Math.min(Math.max(start, 0), n);
      end = Math.min(Math.max(end, 0), n);
    } else {
      start = Math.min(Math.max(start, 0), n - 1);
      end = Math.min(Math.max(end, -1), n - 1);
    }
    [s[a], e[a], st[a]] = [start, end, step];
  });
  if (s.every((v) => v === 0) && e.every((v, i) => v === t.shape[i]) && st.every((v) => v === 1)) return t;
  return apply("slice", [t], { starts: s, ends: e, steps: st });
}

function split(x: Input[], ctx: OpContext): Tensor[] {
  const t = need(x, 0, ctx);
  const axis = normalizeAxis(ctx.attrs.int("axis", 0), t.ndim);
  const n = t.shape[axis];
  let sizes = ctx.opset >= 13 ? optionalInts(x[1], "split", ctx) : ctx.attrs.has("split") ? ctx.attrs.ints("split") : undefined;
  if (!sizes) {
    const parts = ctx.attrs.int("num_outputs", ctx.outputs);
    const chunk = Math.ceil(n / parts);
    sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(chunk, n - i * chunk)));
  }
  if (sizes.reduce((a, b) => a + b, 0) !== n) fail(`${ctx.label}: split sizes [${sizes}] do not add up to ${n}`);
  let at = 0;
  return sizes.map((size) => {
    const part = t.slice(axis, at, at + size);
    at += size;
    return part === t ? identityCopy(t) : part;
  });
}

function pad(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const mode = ctx.attrs.string("mode", "constant");
  let pads = ctx.opset >= 11 ? constValues(need(x, 1, ctx), "pads", ctx) : ctx.attrs.ints(ctx.opset >= 2 ? "pads" : "paddings");
  // a constant_value computed at run time pads with 0, then selects it through a constant mask
  const runtimeValue = ctx.opset >= 11 && x[2]?.isSymbolic ? x[2] : undefined;
  const value = ctx.opset >= 11 ? (x[2] && !runtimeValue ? constValues(x[2], "constant_value", ctx)[0] ?? 0 : 0) : ctx.attrs.float("value", 0);
  const axes = ctx.opset >= 18 ? optionalInts(x[3], "axes", ctx) : undefined;
  if (axes) {
    const full = new Array(2 * t.ndim).fill(0);
    axes.forEach((axis, i) => {
      const a = normalizeAxis(axis, t.ndim);
      full[a] = pads[i];
      full[a + t.ndim] = pads[i + axes.length];
    });
    pads = full;
  }
  if (pads.length !== 2 * t.ndim) fail(`${ctx.label}: ${pads.length} pads for a rank-${t.ndim} input`);
  // negative pads crop
  const crop = pads.some((p) => p < 0);
  const grow = pads.map((p) => Math.max(p, 0));
  let y: Tensor;
  if (mode === "constant" && runtimeValue && grow.some((p) => p > 0)) {
    const inside = apply("pad", [Tensor.full(t.shape, 1, "bool")], { pads: grow, value: 0 });
    y = Tensor.where(inside, apply("pad", [t], { pads: grow, value: 0 }), runtimeValue.reshape([]));
  } else if (mode === "constant") y = grow.some((p) => p > 0) ? apply("pad", [t], { pads: grow, value }) : t;
  else if (mode === "reflect" || mode === "edge" || mode === "wrap") y = padByCopies(t, grow, mode, ctx);
  else fail(`${ctx.label}: unknown pad mode '${mode}'`);
  if (crop) {
    for (let d = 0; d < t.ndim; d++) {
      const before = Math.max(-pads[d], 0), after = Math.max(-pads[d + t.ndim], 0);
      if (before || after) y = y.slice(d, before, y.shape[d] - after);
    }
  }
  return y === t ? identityCopy(t) : y;
}

/** reflect / edge / wrap padding: each side is a slice (flipped for reflect) concatenated on. */
function padByCopies(t: Tensor, pads: number[], mode: string, ctx: OpContext): Tensor {
  let y = t;
  for (let d = 0; d < t.ndim; d++) {
    const before = pads[d], after = pads[d + t.ndim], n = t.shape[d];
    if (!before && !after) continue;
    const parts: Tensor[] = [];
    const piece = (count: number, front: boolean): Tensor => {
      if (mode === "edge") return (front ? y.slice(d, 0, 1) : y.slice(d, n - 1, n)).expand(y.shape.map((s, i) => (i === d ? count : s)));
      if (mode === "wrap") {
        if (count > n) fail(`${ctx.label}: wrap padding ${count} exceeds dimension ${n}`);
        return front ? y.slice(d, n - count, n) : y.slice(d, 0, count);
      }
      if (count >= n) fail(`${ctx.label}: reflect padding ${count} needs a dimension larger than ${n}`);
      return (front ? y.slice(d, 1, count + 1) : y.slice(d, n - 1 - count, n - 1)).flip(d);
    };
    if (before) parts.push(piece(before, true));
    parts.push(y);
    if (after) parts.push(piece(after, false));
    y = Tensor.cat(parts, d);
  }
  return y;
}

function constant(_x: Input[], ctx: OpContext): Tensor {
  const a = ctx.attrs;
  if (a.has("value")) {
    const h = a.tensor("value");
    return Tensor.from(h.data, { shape: h.shape, dtype: h.dtype });
  }
  if (a.has("value_float")) return scalarOf(a.float("value_float"), "float32");
  if (a.has("value_floats")) return Tensor.from(new Float32Array(a.floats("value_floats")));
  if (a.has("value_int")) return Tensor.from(new BigInt64Array([BigInt(a.int("value_int"))]), { shape: [] });
  if (a.has("value_ints")) return Tensor.from(new BigInt64Array(a.ints("value_ints").map(BigInt)));
  fail(`${ctx.label}: only tensor, float(s) and int(s) constants are supported`);
}

function constantOfShape(x: Input[], ctx: OpContext): Tensor {
  const shape = constValues(need(x, 0, ctx), "the shape", ctx);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`${ctx.label}: shape [${shape}] has a negative dim`);
  if (!ctx.attrs.has("value")) return Tensor.zeros(shape);
  const v = ctx.attrs.tensor("value");
  return Tensor.full(shape, Number(v.data[0]), v.dtype);
}

function range(x: Input[], ctx: OpContext): Tensor {
  const [start, limit, delta] = [0, 1, 2].map((i) => constValues(need(x, i, ctx), "range bounds", ctx)[0]);
  if (delta === 0) fail(`${ctx.label}: delta is 0`);
  const dtype = need(x, 0, ctx).dtype;
  const n = Math.max(0, Math.ceil((limit - start) / delta));
  const out = hostArray([n], dtype);
  for (let i = 0; i < n; i++) {
    if (isBigIntArray(out)) out[i] = BigInt(start + i * delta);
    else out[i] = start + i * delta;
  }
  return Tensor.from(out, { shape: [n], dtype });
}

const int64Vector = (values: number[], shape = [values.length]): Tensor => Tensor.from(new BigInt64Array(values.map(BigInt)), { shape, dtype: "int64" });

function shapeOp(x: Input[], ctx: OpContext): Tensor {
  const s = need(x, 0, ctx).shape;
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + s.length : i, 0), s.length);
  const start = clampIdx(ctx.attrs.int("start", 0)), end = clampIdx(ctx.attrs.int("end", s.length));
  return int64Vector(s.slice(start, Math.max(start, end)));
}

function gather(x: Input[], ctx: OpContext): Tensor {
  const data = need(x, 0, ctx), idx = need(x, 1, ctx);
  const axis = normalizeAxis(ctx.attrs.int("axis", 0), data.ndim);
  let indices = idx;
  if (!idx.isSymbolic) {
    const n = data.shape[axis];
    const vals = constValues(idx, "indices", ctx).map((i) => {
      if (i < -n || i >= n) fail(`${ctx.label}: index ${i} is out of range for axis ${axis} of size ${n}`);
      return i < 0 ? i + n : i;
    });
    indices = Tensor.from(new Int32Array(vals), { shape: idx.shape, dtype: "int32" });
  }
  return apply("gather", [data, cast(indices, "int32")], { axis });
}

function clip(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  let lo: number | Tensor | undefined, hi: number | Tensor | undefined;
  if (ctx.opset >= 11) {
    lo = x[1] && (x[1].isSymbolic ? x[1] : constValues(x[1], "min", ctx)[0]);
    hi = x[2] && (x[2].isSymbolic ? x[2] : constValues(x[2], "max", ctx)[0]);
  } else {
    lo = ctx.attrs.float("min", -Infinity);
    hi = ctx.attrs.float("max", Infinity);
  }
  if (t.dtype === "float32" && typeof lo !== "object" && typeof hi !== "object") return t.clamp(lo ?? -Infinity, hi ?? Infinity);
  let y = t;
  if (lo !== undefined) y = y.maximum(lo);
  if (hi !== undefined) y = y.minimum(hi);
  return y === t ? identityCopy(t) : y;
}

function cumsum(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const axis = normalizeAxis(constValues(need(x, 1, ctx), "axis", ctx)[0], t.ndim);
  const reverse = ctx.attrs.int("reverse", 0) === 1, exclusive = ctx.attrs.int("exclusive", 0) === 1;
  let y = reverse ? t.flip(axis) : t;
  const n = t.shape[axis];
  // Hillis–Steele scan: log2(n) shifted adds, exact for every dtype
  const shifted = (v: Tensor, k: number) => {
    const pads = new Array(2 * v.ndim).fill(0);
    pads[axis] = k;
    return apply("pad", [v.slice(axis, 0, n - k)], { pads, value: 0 });
  };
  if (exclusive) y = n > 1 ? shifted(y, 1) : Tensor.zeros(y.shape, y.dtype);
  for (let k = 1; k < n; k *= 2) y = y.add(shifted(y, k));
  if (reverse) y = y.flip(axis);
  return y === t ? identityCopy(t) : y;
}

function trilu(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const k = x[1] ? constValues(x[1], "k", ctx)[0] : 0;
  const upper = ctx.attrs.int("upper", 1) !== 0; // any nonzero value means upper, as in onnxruntime
  const [rows, cols] = t.shape.slice(-2);
  const mask = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mask[i * cols + j] = (upper ? j - i >= k : j - i <= k) ? 1 : 0;
  return Tensor.where(Tensor.from(mask, { shape: [rows, cols], dtype: "bool" }), t, scalarOf(0, t.dtype));
}

function oneHot(x: Input[], ctx: OpContext): Tensor {
  const indices = need(x, 0, ctx);
  const depth = constValues(need(x, 1, ctx), "depth", ctx)[0];
  const values = need(x, 2, ctx);
  const [off, on] = [0, 1].map((i) => values.slice(0, i, i + 1).reshape([]));
  const axis = normalizeAxis(ctx.attrs.int("axis", -1), indices.ndim + 1);
  const idx = cast(indices, "int32");
  const wrapped = Tensor.where(idx.lt(scalarOf(0, "int32")), idx.add(scalarOf(depth, "int32")), idx).unsqueeze(axis);
  const positions = Tensor.arange(0, depth, 1, "int32").reshape(wrapped.shape.map((_, i) => (i === axis ? depth : 1)));
  return Tensor.where(wrapped.eq(positions), on, off);
}

function expand(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const shape = broadcastShapes(t.shape, constValues(need(x, 1, ctx), "the shape", ctx));
  return shape.join() === t.shape.join() ? identityCopy(t) : t.expand(shape);
}

function tile(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const reps = constValues(need(x, 1, ctx), "repeats", ctx);
  if (reps.length !== t.ndim) fail(`${ctx.label}: ${reps.length} repeats for a rank-${t.ndim} input`);
  if (reps.some((r) => !Number.isInteger(r) || r < 0)) fail(`${ctx.label}: repeats [${reps}] must be non-negative integers`);
  // a zero repeat empties its axis: the result holds no values at all
  if (reps.includes(0)) return Tensor.zeros(t.shape.map((d, i) => d * reps[i]), t.dtype);
  let y = t;
  reps.forEach((r, axis) => {
    if (r !== 1) y = Tensor.cat(new Array<Tensor>(r).fill(y), axis);
  });
  return y === t ? identityCopy(t) : y;
}

function flatten(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const axis = ctx.attrs.int("axis", 1);
  const a = axis < 0 ? axis + t.ndim : axis;
  if (a < 0 || a > t.ndim) fail(`${ctx.label}: axis ${axis} out of range for rank ${t.ndim}`);
  return reshapeTo(t, [numel(t.shape.slice(0, a)), numel(t.shape.slice(a))]);
}

function depthToSpace(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const b = ctx.attrs.int("blocksize");
  const [N, C, H, W] = t.shape;
  const c = C / (b * b);
  const crd = ctx.attrs.string("mode", "DCR") === "CRD";
  const split = crd ? t.reshape([N, c, b, b, H, W]).permute([0, 1, 4, 2, 5, 3]) : t.reshape([N, b, b, c, H, W]).permute([0, 3, 4, 1, 5, 2]);
  return split.reshape([N, c, H * b, W * b]);
}

function spaceToDepth(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const b = ctx.attrs.int("blocksize");
  const [N, C, H, W] = t.shape;
  return t.reshape([N, C, H / b, b, W / b, b]).permute([0, 3, 5, 1, 2, 4]).reshape([N, C * b * b, H / b, W / b]);
}

function batchNorm(x: Input[], ctx: OpContext): Tensor | Input[] {
  const [t, scale, bias, mean, variance] = [0, 1, 2, 3, 4].map((i) => need(x, i, ctx));
  const eps = ctx.attrs.float("epsilon", 1e-5);
  if (ctx.attrs.int("training_mode", 0) !== 1) {
    if (ctx.outputs > 1 && ctx.opset >= 14) fail(`${ctx.label}: running statistics are outputs only in training mode`);
    if (ctx.outputs > 1) fail(`${ctx.label}: the pre-opset-14 training outputs are not supported`);
    return apply("batchnorm", [t, scale, bias, mean, variance], { eps });
  }
  // training mode: normalise with the batch's statistics, and update the running ones with momentum
  const axes = [0, ...t.shape.slice(2).map((_, i) => i + 2)];
  const perChannel = (v: Tensor) => v.reshape([t.shape[1], ...t.shape.slice(2).map(() => 1)]);
  const batchMean = t.mean(axes), centered = t.sub(perChannel(batchMean));
  const batchVar = centered.mul(centered).mean(axes);
  const y = centered.div(perChannel(batchVar.add(eps).sqrt())).mul(perChannel(scale)).add(perChannel(bias));
  const momentum = ctx.attrs.float("momentum", 0.9);
  const running = (old: Tensor, batch: Tensor) => old.mul(momentum).add(batch.mul(1 - momentum));
  return [y, running(mean, batchMean), running(variance, batchVar)];
}

/** (x - mean) / sqrt(var + eps) over `axes`, computed in x's dtype. */
function normalize(t: Tensor, axes: number[], eps: number): Tensor {
  const centered = t.sub(t.mean(axes, true));
  return centered.div(centered.mul(centered).mean(axes, true).add(eps).sqrt());
}

function instanceNorm(x: Input[], ctx: OpContext): Tensor {
  const [t, scale, bias] = [0, 1, 2].map((i) => need(x, i, ctx));
  const perChannel = (v: Tensor) => v.reshape([t.shape[1], ...t.shape.slice(2).map(() => 1)]);
  const y = normalize(t, t.shape.slice(2).map((_, i) => i + 2), ctx.attrs.float("epsilon", 1e-5));
  return y.mul(perChannel(scale)).add(perChannel(bias));
}

function layerNorm(x: Input[], ctx: OpContext): Tensor | Input[] {
  const t = need(x, 0, ctx), scale = need(x, 1, ctx), bias = x[2];
  const axis = normalizeAxis(ctx.attrs.int("axis", -1), t.ndim);
  const eps = ctx.attrs.float("epsilon", 1e-5);
  const axes = t.shape.slice(axis).map((_, i) => axis + i);
  if (ctx.outputs > 1 || t.dtype !== "float32") {
    const mean = t.mean(axes, true);
    const centered = t.sub(mean);
    const invStd = centered.mul(centered).mean(axes, true).add(eps).sqrt().reciprocal();
    let y = centered.mul(invStd).mul(scale);
    if (bias) y = y.add(bias);
    return [y, mean, invStd];
  }
  const full = t.shape.slice(axis);
  const fit = (v: Tensor) => (v.shape.join() === full.join() ? v : v.expand(full));
  return apply("layernorm", bias ? [t, fit(scale), fit(bias)] : [t, fit(scale)], { axis, eps });
}

function groupNorm(x: Input[], ctx: OpContext): Tensor {
  const [t, scale, bias] = [0, 1, 2].map((i) => need(x, i, ctx));
  const groups = ctx.attrs.int("num_groups");
  const [N, C] = t.shape;
  const grouped = t.reshape([N, groups, numel(t.shape.slice(1)) / groups]);
  const y = normalize(grouped, [2], ctx.attrs.float("epsilon", 1e-5)).reshape(t.shape);
  // opset 18 had one scale per group, opset 21 one per channel
  const perChannel = (v: Tensor) => (v.shape[0] === C ? v : v.reshape([groups, 1]).expand([groups, C / groups]).reshape([C])).reshape([C, ...t.shape.slice(2).map(() => 1)]);
  return y.mul(perChannel(scale)).add(perChannel(bias));
}

function rmsNorm(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx), scale = need(x, 1, ctx);
  const axis = normalizeAxis(ctx.attrs.int("axis", -1), t.ndim);
  const axes = t.shape.slice(axis).map((_, i) => axis + i);
  const rms = t.mul(t).mean(axes, true).add(ctx.attrs.float("epsilon", 1e-5)).sqrt();
  return t.div(rms).mul(scale);
}

function lrn(x: Input[], ctx: OpContext): Tensor {
  const t = need(x, 0, ctx);
  const size = ctx.attrs.int("size"), alpha = ctx.attrs.float("alpha", 1e-4), beta = ctx.attrs.float("beta", 0.75), bias = ctx.attrs.float("bias", 1);
  const [N, C] = t.shape;
  const rest = numel(t.shape.slice(2));
  // the sum of squares over a window of channels is an average pool over a [C, rest] plane
  const sq = t.mul(t).reshape([N, 1, C, rest]);
  const before = Math.floor((size - 1) / 2), after = Math.ceil((size - 1) / 2);
  const windowSum = apply("avgpool2d", [sq], { kernel: [size, 1], stride: [1, 1], pads: [before, 0, after, 0], dilation: [1, 1], ceilMode: false, countIncludePad: true }).mul(size);
  return t.div(windowSum.reshape(t.shape).mul(alpha / size).add(bias).pow(beta));
}

function where(x: Input[], ctx: OpContext): Tensor {
  return Tensor.where(need(x, 0, ctx), need(x, 1, ctx), need(x, 2, ctx));
}

function mod(x: Input[], ctx: OpContext): Tensor {
  return apply("mod", [need(x, 0, ctx), need(x, 1, ctx)], { fmod: ctx.attrs.int("fmod", 0) === 1 });
}

function argReduce(isMin: boolean): Handler {
  return (x, ctx) => {
    const t = need(x, 0, ctx);
    const axis = normalizeAxis(ctx.attrs.int("axis", 0), t.ndim);
    const y = apply("argreduce", [t], { axis, keepdim: ctx.attrs.int("keepdims", 1) === 1, isMin, selectLast: ctx.attrs.int("select_last_index", 0) === 1 });
    return cast(y, "int64");
  };
}

function gelu(t: Tensor, ctx: OpContext): Tensor {
  if (ctx.attrs.string("approximate", "none") === "tanh") {
    const inner = t.add(t.mul(t).mul(t).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return t.mul(0.5).mul(inner.tanh().add(1));
  }
  return t.gelu();
}

function dropout(x: Input[], ctx: OpContext): Input[] {
  const t = need(x, 0, ctx);
  const training = ctx.opset >= 12 && x[2] ? constValues(x[2], "training_mode", ctx)[0] : 0;
  const ratio = ctx.opset >= 12 ? (x[1] ? constValues(x[1], "ratio", ctx)[0] : 0.5) : ctx.attrs.float("ratio", 0.5);
  if (training && ratio !== 0) fail(`${ctx.label}: training-mode dropout is random and not supported`);
  return [identityCopy(t), Tensor.full(t.shape, 1, "bool")];
}

const castTo = (x: Input[], ctx: OpContext): Tensor => {
  const t = need(x, 0, ctx);
  const code = ctx.attrs.int("to");
  return castToType(t, onnxDType(code, `${ctx.label} target type`), narrowOfCode(code));
};

/** A cast to an ONNX type: to a 4- or 2-bit integer as to int32 and then wrapped to its bits (as numpy's astype through ml_dtypes); narrow floats round afterwards (index.ts). */
function castToType(t: Tensor, to: DType, narrow: Narrow | undefined): Tensor {
  const int = narrow && NARROW_INTS[narrow];
  if (!int) return t.dtype === to ? identityCopy(t) : cast(t, to);
  const low = apply("bitwiseAnd", [cast(t, "int32"), scalarOf(2 ** int.bits - 1, "int32")], {});
  const half = scalarOf(2 ** (int.bits - 1), "int32");
  return cast(int.signed ? apply("bitwiseXor", [low, half], {}).sub(half) : low, to);
}

const logical = (fn: (a: Tensor, b: Tensor) => Tensor): Handler => binary((a, b) => fn(a, b));
const FALSE = () => Tensor.full([], 0, "bool");

/** Every ONNX op the importer knows; handler files add theirs with registerHandlers. */
export const HANDLERS: Record<string, Handler> = {};

export function registerHandlers(handlers: Record<string, Handler>): void {
  for (const [name, h] of Object.entries(handlers)) {
    if (Object.hasOwn(HANDLERS, name)) throw new Error(`ONNX op ${name} has two handlers`);
    HANDLERS[name] = h;
  }
}

/** Replaces a registered handler with one that covers more cases and hands the rest to the original. */
export function extendHandler(name: string, wrap: (base: Handler) => Handler): void {
  const base = HANDLERS[name];
  if (!base) throw new Error(`ONNX op ${name} has no handler to extend`);
  HANDLERS[name] = wrap(base);
}

registerHandlers({
  // element-wise arithmetic
  Add: binary((a, b) => a.add(b)),
  Sub: binary((a, b) => a.sub(b)),
  Mul: binary((a, b) => a.mul(b)),
  Div: binary((a, b) => a.div(b)),
  Pow: binary((a, b) => a.pow(cast(b, a.dtype))),
  Mod: mod,
  Max: variadic((a, b) => a.maximum(b)),
  Min: variadic((a, b) => a.minimum(b)),
  Sum: variadic((a, b) => a.add(b)),
  Mean: (x, ctx) => {
    const ts = x.filter((t): t is Tensor => t !== undefined);
    const total = (HANDLERS.Sum(x, ctx) as Tensor);
    return ts.length === 1 ? total : total.div(ts.length);
  },
  Neg: unary((t) => t.neg()),
  Abs: unary((t) => t.abs()),
  Sign: unary((t) => t.sign()),
  Reciprocal: unary((t) => t.reciprocal()),
  Sqrt: unary((t) => t.sqrt()),
  Exp: unary((t) => t.exp()),
  Log: unary((t) => t.log()),
  Erf: unary((t) => t.erf()),
  Floor: unary((t) => t.floor()),
  Ceil: unary((t) => t.ceil()),
  Round: unary((t) => t.round()),
  Sin: unary((t) => t.sin()),
  Cos: unary((t) => t.cos()),
  Tan: op("tan"),
  Asin: op("asin"),
  Acos: op("acos"),
  Atan: op("atan"),
  Sinh: op("sinh"),
  Cosh: op("cosh"),
  Asinh: op("asinh"),
  Acosh: op("acosh"),
  Atanh: op("atanh"),
  // activations
  Relu: unary((t) => t.relu()),
  Sigmoid: unary((t) => t.sigmoid()),
  Tanh: unary((t) => t.tanh()),
  Softplus: unary((t) => t.softplus()),
  Softsign: unary((t) => t.div(t.abs().add(1))),
  LeakyRelu: unary((t, ctx) => t.leakyRelu(ctx.attrs.float("alpha", 0.01))),
  Elu: unary((t, ctx) => t.elu(ctx.attrs.float("alpha", 1))),
  Selu: unary((t, ctx) => {
    const alpha = ctx.attrs.float("alpha", 1.67326319217681884765625), gamma = ctx.attrs.float("gamma", 1.05070102214813232421875);
    return Tensor.where(t.gt(0), t.mul(gamma), t.exp().sub(1).mul(alpha * gamma));
  }),
  Celu: unary((t, ctx) => {
    const alpha = ctx.attrs.float("alpha", 1);
    return t.relu().add(t.div(alpha).exp().sub(1).mul(alpha).minimum(0));
  }),
  ThresholdedRelu: unary((t, ctx) => Tensor.where(t.gt(ctx.attrs.float("alpha", 1)), t, 0)),
  HardSigmoid: unary((t, ctx) => apply("hardsigmoid", [t], { alpha: ctx.attrs.float("alpha", 0.2), beta: ctx.attrs.float("beta", 0.5) })),
  HardSwish: unary((t) => t.hardswish()),
  Mish: unary((t) => t.mul(t.softplus().tanh())),
  Swish: unary((t, ctx) => {
    const alpha = ctx.attrs.float("alpha", 1);
    return alpha === 1 ? t.silu() : t.mul(t.mul(alpha).sigmoid());
  }),
  Gelu: unary(gelu),
  PRelu: (x, ctx) => {
    const t = need(x, 0, ctx);
    let slope = need(x, 1, ctx);
    // before opset 7 a 1-d slope was one value per channel (axis 1)
    if (ctx.opset < 7 && slope.ndim === 1 && t.ndim > 2 && slope.shape[0] === t.shape[1]) slope = slope.reshape([slope.shape[0], ...t.shape.slice(2).map(() => 1)]);
    return Tensor.where(t.lt(0), t.mul(slope), t);
  },
  Shrink: unary((t, ctx) => {
    const lambd = ctx.attrs.float("lambd", 0.5), bias = ctx.attrs.float("bias", 0);
    return Tensor.where(t.lt(-lambd), t.add(scalarOf(bias, t.dtype)), Tensor.where(t.gt(lambd), t.sub(scalarOf(bias, t.dtype)), scalarOf(0, t.dtype)));
  }),
  Clip: clip,
  Softmax: softmaxLike((t, axis) => t.softmax(axis)),
  LogSoftmax: softmaxLike((t, axis) => t.logSoftmax(axis)),
  Hardmax: softmaxLike(hardmax),
  // comparison and logic
  Equal: binary((a, b) => a.eq(b)),
  Less: binary((a, b) => a.lt(b)),
  LessOrEqual: binary((a, b) => a.le(b)),
  Greater: binary((a, b) => a.gt(b)),
  GreaterOrEqual: binary((a, b) => a.ge(b)),
  Not: unary((t) => t.eq(FALSE())),
  And: logical((a, b) => Tensor.where(a, b, a)),
  Or: logical((a, b) => Tensor.where(a, a, b)),
  Xor: logical((a, b) => a.ne(b)),
  Where: where,
  // linear algebra and NN
  MatMul: binary(matmul),
  Gemm: gemm,
  Conv: conv,
  MaxPool: pool("maxpool2d"),
  AveragePool: pool("avgpool2d"),
  GlobalAveragePool: unary((t) => t.mean(t.shape.slice(2).map((_, i) => i + 2), true)),
  GlobalMaxPool: unary((t) => t.max(t.shape.slice(2).map((_, i) => i + 2), true)),
  BatchNormalization: batchNorm,
  InstanceNormalization: instanceNorm,
  LayerNormalization: layerNorm,
  GroupNormalization: groupNorm,
  RMSNormalization: rmsNorm,
  LRN: lrn,
  Dropout: dropout,
  // reductions
  ReduceSum: reduce("sum", undefined, undefined, 13),
  ReduceMean: reduce("mean"),
  ReduceMax: reduce("max"),
  ReduceMin: reduce("min"),
  ReduceProd: reduce("prod"),
  ReduceL1: reduce("l1"),
  ReduceL2: reduce("sumSquares", (t) => t.sqrt()),
  ReduceSumSquare: reduce("sumSquares"),
  ReduceLogSum: reduce("sum", (t) => t.log()),
  ReduceLogSumExp: reduce("logSumExp"),
  ArgMax: argReduce(false),
  ArgMin: argReduce(true),
  CumSum: cumsum,
  // shape and data movement
  Identity: unary((t) => identityCopy(t)),
  Reshape: reshape,
  Flatten: flatten,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Transpose: unary((t, ctx) => {
    const perm = ctx.attrs.ints("perm", t.shape.map((_, i) => t.ndim - 1 - i));
    const y = t.permute(perm);
    return y === t ? identityCopy(t) : y;
  }),
  Concat: (x, ctx) => {
    const ts = x.filter((t): t is Tensor => t !== undefined && t.size > 0);
    if (!ts.length) fail(`${ctx.label}: every input is empty`);
    return ts.length === 1 ? identityCopy(ts[0]) : Tensor.cat(ts, normalizeAxis(ctx.attrs.int("axis"), ts[0].ndim));
  },
  Split: split,
  Slice: slice,
  Gather: gather,
  Expand: expand,
  Tile: tile,
  Pad: pad,
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
  Trilu: trilu,
  OneHot: oneHot,
  // compile-time constants
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Range: range,
  Shape: shapeOp,
  Size: (x, ctx) => int64Vector([need(x, 0, ctx).size], []),
  Cast: castTo,
  BitCast: (x, ctx) => apply("bitcast", [need(x, 0, ctx)], { to: onnxDType(ctx.attrs.int("to"), `${ctx.label} target type`) }),
  CastLike: (x, ctx) => {
    const t = need(x, 0, ctx), like = need(x, 1, ctx);
    return castToType(t, like.dtype, narrowOf(like));
  },
});
