import { fail } from "../errors.js";
import { DTYPES, numel } from "../ir/dtype.js";
import type { Attrs, HostTensor, TensorType } from "../ir/graph.js";
import { broadcastShapes, broadcastStrides, gatherStrided, newHost, normalizeAxis, shapeStr, stridesOf, writeNum } from "../ir/shape.js";
import { apply, Tensor } from "../tensor/tensor.js";
import { defineOp, sumToShape, type LowerContext } from "./registry.js";

/**
 * Data movement. Every op here lowers to one kernel, `stridedCopy` (a 6-d box copy with arbitrary
 * element strides on both sides), except reshape, which is a view and costs nothing.
 */

const MAX_COPY_RANK = 6;

/** Emits one stridedCopy after merging dims that are contiguous on both sides. */
export function emitStridedCopy(ctx: LowerContext, src: number | string, dst: number | string, elemBytes: number, dims: number[], srcStrides: number[], dstStrides: number[]): void {
  const d: number[] = [], ss: number[] = [], ds: number[] = [];
  dims.forEach((n, i) => {
    if (n === 1) return;
    const k = d.length - 1;
    if (k >= 0 && ss[k] === srcStrides[i] * n && ds[k] === dstStrides[i] * n) {
      d[k] *= n;
      ss[k] = srcStrides[i];
      ds[k] = dstStrides[i];
    } else {
      d.push(n);
      ss.push(srcStrides[i]);
      ds.push(dstStrides[i]);
    }
  });
  if (d.length > MAX_COPY_RANK) fail(`a copy of rank ${d.length} exceeds the kernel's ${MAX_COPY_RANK} dimensions (shape ${shapeStr(dims)})`);
  while (d.length < MAX_COPY_RANK) {
    d.unshift(1);
    ss.unshift(0);
    ds.unshift(0);
  }
  if (numel(d) === 0) return;
  ctx.call("copy", "stridedCopy", [src, dst, elemBytes, ...d, ...ss, ...ds]);
}

export function permuteHost(x: HostTensor, perm: number[]): HostTensor {
  const st = stridesOf(x.shape);
  return gatherStrided(x, perm.map((d) => x.shape[d]), perm.map((d) => st[d]), 0);
}

export function emitPermute(ctx: LowerContext, shape: number[], perm: number[], src: number, dst: number, elemBytes: number): void {
  const st = stridesOf(shape);
  const outShape = perm.map((d) => shape[d]);
  emitStridedCopy(ctx, src, dst, elemBytes, outShape, perm.map((d) => st[d]), stridesOf(outShape));
}

const elemBytes = (t: TensorType): number => DTYPES[t.dtype].bytes;

/** Fills a buffer of type `t` with `value`: fill32 for 4-byte types, else a generated loop storing the value's bits. */
export function emitFill(ctx: LowerContext, ptr: number, t: TensorType, value: number): void {
  const bytes = elemBytes(t), n = numel(t.shape);
  const one = new DTYPES[t.dtype].array(1);
  writeNum(one, 0, value);
  const raw = new Uint8Array(one.buffer);
  if (bytes === 4) return ctx.call("copy", "fill32", [ptr, n, new Int32Array(one.buffer)[0]]);
  const bits = bytes === 8 ? `<i64>${new BigInt64Array(one.buffer)[0]}` : String(bytes === 2 ? new Int16Array(raw.buffer)[0] : new Int8Array(raw.buffer)[0]);
  const store = { 1: "i8", 2: "i16", 8: "i64" }[bytes];
  ctx.emit(`for (let i: usize = 0; i < ${n}; i++) store<${store}>(${ptr} + i * ${bytes}, ${bits});`);
}
const anyDType = () => true;

/**
 * The adjoint of a slice with positive steps: `g` placed at positions start + k·step along each axis
 * of an otherwise zero tensor of `shape`. Built from reshape/pad/slice, so it traces like any op.
 */
export function unslice(g: Tensor, shape: number[], starts: number[], steps: number[]): Tensor {
  if (g.size === 0) return Tensor.zeros(shape, g.dtype);
  let t = g;
  steps.forEach((step, d) => {
    const n = t.shape[d];
    if (step === 1 || n === 1) return;
    // step - 1 zeros after every element: [.., n, 1, ..] padded to [.., n, step, ..], merged, tail cut
    const split = [...t.shape.slice(0, d), n, 1, ...t.shape.slice(d + 1)];
    const pads = [...split.map(() => 0), ...split.map((_, i) => (i === d + 1 ? step - 1 : 0))];
    const spread = apply("pad", [t.reshape(split)], { pads, value: 0 }).reshape([...t.shape.slice(0, d), n * step, ...t.shape.slice(d + 1)]);
    t = spread.slice(d, 0, (n - 1) * step + 1);
  });
  const after = shape.map((n, d) => n - starts[d] - t.shape[d]);
  return starts.every((p) => p === 0) && after.every((p) => p === 0) ? t : apply("pad", [t], { pads: [...starts, ...after], value: 0 });
}

// --- reshape: a view ---------------------------------------------------------------------------------
defineOp({
  name: "reshape",
  infer([x], attrs) {
    const shape = attrs.shape as number[];
    if (shape.some((d) => !Number.isInteger(d) || d < 0) || numel(shape) !== numel(x.shape)) {
      fail(`cannot reshape ${shapeStr(x.shape)} (${numel(x.shape)} elements) to ${shapeStr(shape)}`);
    }
    return [{ shape: [...shape], dtype: x.dtype }];
  },
  reference: ([x], attrs) => [{ shape: [...(attrs.shape as number[])], dtype: x.dtype, data: x.data.slice() }],
  view: true,
  compiledDTypes: anyDType,
  grad: ({ inputs: [x], grad }) => [grad.reshape(x.shape)],
});

// --- copy: a tensor into a buffer of its own ------------------------------------------------------------
// A streaming model's next state, copied over its state input's bytes at the end of run() (compile's streamState).
defineOp({
  name: "copy",
  infer: ([x]) => [{ shape: [...x.shape], dtype: x.dtype }],
  reference: ([x]) => [{ shape: [...x.shape], dtype: x.dtype, data: x.data.slice() }],
  lower(ctx, node) {
    const x = node.inputs[0], strides = stridesOf(x.shape);
    emitStridedCopy(ctx, ctx.ptr(x), ctx.ptr(node.outputs[0]), elemBytes(x), x.shape, strides, strides);
  },
  compiledDTypes: anyDType,
  grad: ({ grad }) => [grad],
});

// --- permute -------------------------------------------------------------------------------------------
function checkPerm(perm: number[], rank: number): void {
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) fail(`permutation [${perm}] does not fit a tensor of rank ${rank}`);
}
defineOp({
  name: "permute",
  infer([x], attrs) {
    const perm = attrs.perm as number[];
    checkPerm(perm, x.shape.length);
    return [{ shape: perm.map((d) => x.shape[d]), dtype: x.dtype }];
  },
  reference: ([x], attrs) => [permuteHost(x, attrs.perm as number[])],
  lower(ctx, node) {
    const x = node.inputs[0];
    emitPermute(ctx, x.shape, node.attrs.perm as number[], ctx.ptr(x), ctx.ptr(node.outputs[0]), elemBytes(x));
  },
  compiledDTypes: anyDType,
  grad({ attrs, grad }) {
    const perm = attrs.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [grad.permute(inverse)];
  },
});

// --- slice: starts/ends/steps per axis, already clamped (python semantics, steps may be negative) ---
export function sliceLength(start: number, end: number, step: number): number {
  return Math.max(0, step > 0 ? Math.ceil((end - start) / step) : Math.ceil((start - end) / -step));
}
function sliceGeometry(x: number[], attrs: Attrs) {
  const starts = attrs.starts as number[], ends = attrs.ends as number[], steps = attrs.steps as number[];
  if (starts.length !== x.length || ends.length !== x.length || steps.length !== x.length) fail(`slice needs one start/end/step per axis of ${shapeStr(x)}`);
  if (steps.some((s) => s === 0 || !Number.isInteger(s))) fail(`slice steps must be non-zero integers, got [${steps}]`);
  const shape = x.map((_, i) => sliceLength(starts[i], ends[i], steps[i]));
  const st = stridesOf(x);
  const start = starts.reduce((acc, s, i) => acc + (shape[i] ? s * st[i] : 0), 0);
  return { shape, strides: st.map((s, i) => s * steps[i]), start };
}
defineOp({
  name: "slice",
  infer([x], attrs) {
    return [{ shape: sliceGeometry(x.shape, attrs).shape, dtype: x.dtype }];
  },
  reference([x], attrs) {
    const g = sliceGeometry(x.shape, attrs);
    return [gatherStrided(x, g.shape, g.strides, g.start)];
  },
  lower(ctx, node) {
    const x = node.inputs[0];
    const g = sliceGeometry(x.shape, node.attrs);
    emitStridedCopy(ctx, ctx.ptr(x) + g.start * elemBytes(x), ctx.ptr(node.outputs[0]), elemBytes(x), g.shape, g.strides, stridesOf(g.shape));
  },
  compiledDTypes: anyDType,
  grad({ inputs: [x], attrs, grad }) {
    const starts = attrs.starts as number[], steps = attrs.steps as number[];
    // a negative step reads backwards: flip those axes and start from the lowest index read
    const backwards = steps.flatMap((step, d) => (step < 0 ? [d] : []));
    const lowest = starts.map((start, d) => (steps[d] < 0 ? start + (grad.shape[d] - 1) * steps[d] : start));
    return [unslice(backwards.length ? grad.flip(backwards) : grad, x.shape, lowest, steps.map(Math.abs))];
  },
});

// --- concat ------------------------------------------------------------------------------------------
defineOp({
  name: "concat",
  infer(inputs, attrs) {
    if (inputs.length === 0) fail("concat needs at least one input");
    const axis = normalizeAxis(attrs.axis as number, inputs[0].shape.length);
    const shape = [...inputs[0].shape];
    for (const t of inputs.slice(1)) {
      if (t.dtype !== inputs[0].dtype) fail(`concat: dtypes ${inputs[0].dtype} and ${t.dtype} differ`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => i !== axis && d !== shape[i])) {
        fail(`concat along axis ${axis}: shapes ${shapeStr(inputs[0].shape)} and ${shapeStr(t.shape)} differ off that axis`);
      }
      shape[axis] += t.shape[axis];
    }
    return [{ shape, dtype: inputs[0].dtype }];
  },
  reference(inputs, attrs) {
    const axis = normalizeAxis(attrs.axis as number, inputs[0].shape.length);
    const shape = [...inputs[0].shape];
    shape[axis] = inputs.reduce((a, t) => a + t.shape[axis], 0);
    const out = newHost(shape, inputs[0].dtype);
    const outer = numel(shape.slice(0, axis)), inner = numel(shape.slice(axis + 1));
    let at = 0;
    for (const t of inputs) {
      const run = t.shape[axis] * inner;
      for (let o = 0; o < outer; o++) for (let i = 0; i < run; i++) out.data[o * shape[axis] * inner + at + i] = t.data[o * run + i];
      at += run;
    }
    return [out];
  },
  lower(ctx, node) {
    const out = node.outputs[0];
    const axis = normalizeAxis(node.attrs.axis as number, out.shape.length);
    const eb = elemBytes(out);
    const inner = numel(out.shape.slice(axis + 1));
    let at = 0;
    for (const t of node.inputs) {
      const dims = [numel(t.shape.slice(0, axis)), t.shape[axis] * inner];
      emitStridedCopy(ctx, ctx.ptr(t), ctx.ptr(out) + at * eb, eb, dims, [dims[1], 1], [out.shape[axis] * inner, 1]);
      at += dims[1];
    }
  },
  compiledDTypes: anyDType,
  grad({ inputs, attrs, grad, needs }) {
    const axis = normalizeAxis(attrs.axis as number, grad.ndim);
    let at = 0;
    return inputs.map((t, i) => {
      const start = at;
      at += t.shape[axis];
      return needs[i] ? grad.slice(axis, start, at) : null;
    });
  },
});

// --- constant pad: pads = [before_0, …, before_{r-1}, after_0, …, after_{r-1}] ---------------------
function padShape(x: number[], pads: number[]): number[] {
  if (pads.length !== 2 * x.length || pads.some((p) => !Number.isInteger(p) || p < 0)) fail(`pad needs ${2 * x.length} non-negative pads for ${shapeStr(x)}, got [${pads}]`);
  return x.map((d, i) => d + pads[i] + pads[i + x.length]);
}
defineOp({
  name: "pad",
  infer([x], attrs) {
    return [{ shape: padShape(x.shape, attrs.pads as number[]), dtype: x.dtype }];
  },
  reference([x], attrs) {
    const pads = attrs.pads as number[];
    const out = newHost(padShape(x.shape, pads), x.dtype);
    for (let i = 0; i < out.data.length; i++) writeNum(out.data, i, Number(attrs.value ?? 0));
    const ost = stridesOf(out.shape), n = numel(x.shape);
    for (let i = 0; i < n; i++) {
      let rest = i, off = 0;
      for (let d = x.shape.length - 1; d >= 0; d--) {
        off += ((rest % x.shape[d]) + pads[d]) * ost[d];
        rest = Math.floor(rest / x.shape[d]);
      }
      out.data[off] = x.data[i];
    }
    return [out];
  },
  lower(ctx, node) {
    const [x, out] = [node.inputs[0], node.outputs[0]];
    const pads = node.attrs.pads as number[];
    emitFill(ctx, ctx.ptr(out), out, Number(node.attrs.value ?? 0));
    const ost = stridesOf(out.shape);
    const origin = pads.slice(0, x.shape.length).reduce((a, p, d) => a + p * ost[d], 0);
    emitStridedCopy(ctx, ctx.ptr(x), ctx.ptr(out) + origin * elemBytes(x), elemBytes(x), x.shape, stridesOf(x.shape), ost);
  },
  compiledDTypes: anyDType,
  grad({ inputs: [x], attrs, grad }) {
    const before = (attrs.pads as number[]).slice(0, x.ndim);
    return [apply("slice", [grad], { starts: before, ends: before.map((p, d) => p + x.shape[d]), steps: before.map(() => 1) })];
  },
});

// --- expand (broadcast to a shape) --------------------------------------------------------------------
defineOp({
  name: "expand",
  infer([x], attrs) {
    return [{ shape: broadcastShapes(x.shape, attrs.shape as number[]), dtype: x.dtype }];
  },
  reference([x], attrs) {
    const shape = broadcastShapes(x.shape, attrs.shape as number[]);
    return [gatherStrided(x, shape, broadcastStrides(x.shape, shape), 0)];
  },
  lower(ctx, node) {
    const [x, out] = [node.inputs[0], node.outputs[0]];
    emitStridedCopy(ctx, ctx.ptr(x), ctx.ptr(out), elemBytes(x), out.shape, broadcastStrides(x.shape, out.shape), stridesOf(out.shape));
  },
  compiledDTypes: anyDType,
  grad: ({ inputs: [x], grad }) => [sumToShape(grad, x.shape)],
});

// --- gather along an axis with int32 indices (embedding lookups) ---------------------------------------
function gatherShape(data: number[], idx: number[], axis: number): number[] {
  return [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)];
}
defineOp({
  name: "gather",
  infer([data, idx], attrs) {
    if (idx.dtype !== "int32") fail(`gather indices must be int32, got ${idx.dtype}`);
    const axis = normalizeAxis(attrs.axis as number, data.shape.length);
    return [{ shape: gatherShape(data.shape, idx.shape, axis), dtype: data.dtype }];
  },
  reference([data, idx], attrs) {
    const axis = normalizeAxis(attrs.axis as number, data.shape.length);
    const out = newHost(gatherShape(data.shape, idx.shape, axis), data.dtype);
    const D = data.shape[axis], inner = numel(data.shape.slice(axis + 1)), outer = numel(data.shape.slice(0, axis));
    const nIdx = idx.data.length;
    for (let o = 0; o < outer; o++) for (let k = 0; k < nIdx; k++) {
      let j = Number(idx.data[k]);
      if (j < -D || j >= D) fail(`gather: index ${j} is out of range for axis ${axis} of size ${D}`);
      if (j < 0) j += D;
      for (let i = 0; i < inner; i++) out.data[(o * nIdx + k) * inner + i] = data.data[(o * D + j) * inner + i];
    }
    return [out];
  },
  lower(ctx, node) {
    const [data, idx] = node.inputs;
    const out = node.outputs[0];
    const axis = normalizeAxis(node.attrs.axis as number, data.shape.length);
    const D = data.shape[axis], inner = numel(data.shape.slice(axis + 1)), outer = numel(data.shape.slice(0, axis));
    const nIdx = numel(idx.shape);
    if (outer === 1) {
      ctx.callChecked("copy", "gatherRows", [ctx.ptr(data), ctx.ptr(idx), ctx.ptr(out), nIdx, inner, D], 2);
      return;
    }
    // one call in a loop, not one per outer slice: a gather along a late axis (a resize) has thousands
    ctx.emit(`for (let o: usize = 0; o < ${outer}; o++) {`);
    ctx.callChecked("copy", "gatherRows", [`${ctx.ptr(data)} + o * ${D * inner * 4}`, ctx.ptr(idx), `${ctx.ptr(out)} + o * ${nIdx * inner * 4}`, nIdx, inner, D], 2);
    ctx.emit("}");
  },
  compiledDTypes: (node) => elemBytes(node.inputs[0]) === 4,
  // rows picked several times get the sum of their gradients
  grad: ({ inputs: [data, idx], attrs, grad, needs }) => {
    const axis = normalizeAxis(attrs.axis as number, data.ndim);
    return [needs[0] ? apply("scatterAdd", [grad, idx], { axis, size: data.shape[axis] }) : null, null];
  },
});

// --- scatterAdd: gather's adjoint; slices of `updates` added into zeros at int32 indices along `axis` ---
function scatterAddGeometry(updates: number[], idx: number[], attrs: Attrs) {
  const size = attrs.size as number;
  const rank = updates.length - idx.length + 1;
  if (rank < 1) fail(`scatterAdd: updates ${shapeStr(updates)} cannot hold indices ${shapeStr(idx)}`);
  const axis = normalizeAxis(attrs.axis as number, rank);
  if (updates.slice(axis, axis + idx.length).join() !== idx.join()) fail(`scatterAdd: updates ${shapeStr(updates)} do not hold indices ${shapeStr(idx)} at axis ${axis}`);
  if (!Number.isInteger(size) || size < 1) fail(`scatterAdd: size must be a positive integer, got ${size}`);
  const shape = [...updates.slice(0, axis), size, ...updates.slice(axis + idx.length)];
  return { shape, axis, size, outer: numel(shape.slice(0, axis)), inner: numel(shape.slice(axis + 1)), nIdx: numel(idx) };
}
defineOp({
  name: "scatterAdd",
  infer([updates, idx], attrs) {
    if (idx.dtype !== "int32") fail(`scatterAdd indices must be int32, got ${idx.dtype}`);
    return [{ shape: scatterAddGeometry(updates.shape, idx.shape, attrs).shape, dtype: updates.dtype }];
  },
  reference([updates, idx], attrs) {
    const g = scatterAddGeometry(updates.shape, idx.shape, attrs);
    const out = newHost(g.shape, updates.dtype);
    const dst = out.data as Float64Array;
    for (let o = 0; o < g.outer; o++) for (let k = 0; k < g.nIdx; k++) {
      let j = Number(idx.data[k]);
      if (j < -g.size || j >= g.size) fail(`scatterAdd: index ${j} is out of range for axis ${g.axis} of size ${g.size}`);
      if (j < 0) j += g.size;
      for (let i = 0; i < g.inner; i++) dst[(o * g.size + j) * g.inner + i] += Number(updates.data[(o * g.nIdx + k) * g.inner + i]);
    }
    return [out];
  },
  lower(ctx, node) {
    const [updates, idx] = node.inputs, out = node.outputs[0];
    const g = scatterAddGeometry(updates.shape, idx.shape, node.attrs);
    ctx.call("copy", "fill32", [ctx.ptr(out), numel(g.shape), 0]);
    // rows added in index order, so repeated indices accumulate; gather's range check and status
    ctx.emit(`for (let o: usize = 0; o < ${g.outer}; o++) {`);
    ctx.emit(`for (let k: usize = 0; k < ${g.nIdx}; k++) {`);
    ctx.emit(`let r = load<i32>(${ctx.ptr(idx)} + (k << 2));`);
    ctx.emit(`if (r < 0) r += ${g.size};`);
    ctx.emit(`if (<u32>r >= ${g.size}) return 2;`);
    ctx.emit(`const src: usize = ${ctx.ptr(updates)} + ((o * ${g.nIdx} + k) * ${g.inner} << 2);`);
    ctx.emit(`const dst: usize = ${ctx.ptr(out)} + ((o * ${g.size} + <usize>r) * ${g.inner} << 2);`);
    ctx.emit(`for (let i: usize = 0; i < ${g.inner * 4}; i += 4) store<f32>(dst + i, load<f32>(dst + i) + load<f32>(src + i));`);
    ctx.emit(`}`);
    ctx.emit(`}`);
  },
  compiledDTypes: (node) => node.inputs[0].dtype === "float32",
  grad: ({ inputs: [, idx], attrs, grad, needs }) => [needs[0] ? apply("gather", [grad, idx], { axis: attrs.axis }) : null, null],
});
