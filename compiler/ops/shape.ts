import { fail } from "../errors.js";
import { DTYPES, numel } from "../ir/dtype.js";
import type { Attrs, HostTensor, TensorType } from "../ir/graph.js";
import { broadcastShapes, broadcastStrides, gatherStrided, newHost, normalizeAxis, shapeStr, stridesOf } from "../ir/shape.js";
import { defineOp, type LowerContext } from "./registry.js";

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
const anyDType = () => true;

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
    (out.data as Float32Array).fill(Number(attrs.value ?? 0));
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
    if (elemBytes(x) !== 4) fail(`pad is compiled for 4-byte dtypes only, got ${x.dtype}`);
    const pads = node.attrs.pads as number[];
    const bits = new Int32Array(new Float32Array([(node.attrs.value as number) ?? 0]).buffer)[0];
    ctx.call("copy", "fill32", [ctx.ptr(out), numel(out.shape), bits]);
    const ost = stridesOf(out.shape);
    const origin = pads.slice(0, x.shape.length).reduce((a, p, d) => a + p * ost[d], 0);
    emitStridedCopy(ctx, ctx.ptr(x), ctx.ptr(out) + origin * 4, 4, x.shape, stridesOf(x.shape), ost);
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
    for (let o = 0; o < outer; o++) {
      ctx.callChecked("copy", "gatherRows", [ctx.ptr(data) + o * D * inner * 4, ctx.ptr(idx), ctx.ptr(out) + o * nIdx * inner * 4, nIdx, inner, D], 2);
    }
  },
  compiledDTypes: (node) => elemBytes(node.inputs[0]) === 4,
});
