import { fail } from "../errors.js";
import { DTYPES, numel } from "../ir/dtype.js";
import type { Attrs, TensorType } from "../ir/graph.js";
import { newHost, normalizeAxis, shapeStr, stridesOf } from "../ir/shape.js";
import { apply } from "../tensor/tensor.js";
import { defineOp, type LowerContext } from "./registry.js";

/**
 * Element-wise indexing along one axis: gatherElements (torch.gather), its adjoint scatterElementsAdd,
 * and topK's index selection. Each lowers to a generated loop nest with every shape and stride baked
 * in; an index out of range makes run() return status 2, like gather.
 */

/** run() status for an index outside its axis (shared with gather) */
export const STATUS_INDEX_OUT_OF_RANGE = 2;

/** AssemblyScript type that moves one element's bits (copies need no arithmetic on them) */
const BITS_TYPE: Record<number, string> = { 1: "u8", 2: "u16", 4: "u32", 8: "u64" };

/**
 * Emits loops over every position of `shape` (variables i0, i1, …) with `k`, the position's flat
 * index, counting along; `body` gets the loop variables and returns the statements for one position.
 */
function emitLoopNest(ctx: LowerContext, shape: number[], body: (vars: string[]) => string[]): void {
  if (numel(shape) === 0) return;
  ctx.emit("{");
  ctx.emit("let k: usize = 0;");
  shape.forEach((n, d) => ctx.emit(`for (let i${d}: usize = 0; i${d} < ${n}; i${d}++) {`));
  for (const line of body(shape.map((_, d) => `i${d}`))) ctx.emit(line);
  ctx.emit("k++;");
  shape.forEach(() => ctx.emit("}"));
  ctx.emit("}");
}

/** `i0 * s0 + i1 * s1 + …` with the axis's variable replaced by `axisIndex` */
function offsetExpr(vars: string[], strides: number[], axis: number, axisIndex: string): string {
  const terms = vars.map((v, d) => (d === axis ? `<usize>${axisIndex}` : v)).map((v, d) => (strides[d] === 1 ? v : `${v} * ${strides[d]}`));
  return terms.length ? terms.join(" + ") : "0";
}

/** Statements that load the int32 index at position k, wrap a negative one and check its range. */
function loadIndex(idxPtr: number, size: number): string[] {
  return [
    `let j = load<i32>(${idxPtr} + (k << 2));`,
    `if (j < 0) j += ${size};`,
    `if (<u32>j >= ${size}) return ${STATUS_INDEX_OUT_OF_RANGE};`,
  ];
}

/** Host side: the position of `k` in `shape` with its `axis` coordinate replaced by a checked index. */
function hostIndex(op: string, raw: number, size: number, axis: number): number {
  if (!Number.isInteger(raw) || raw < -size || raw >= size) fail(`${op}: index ${raw} is out of range for axis ${axis} of size ${size}`);
  return raw < 0 ? raw + size : raw;
}

/** Calls fn(k, coords) for every position of `shape` in row-major order. */
function forEachPosition(shape: number[], fn: (k: number, coords: number[]) => void): void {
  const n = numel(shape), coords = shape.map(() => 0);
  for (let k = 0; k < n; k++) {
    fn(k, coords);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++coords[d] < shape[d]) break;
      coords[d] = 0;
    }
  }
}

/** Indices must have data's rank and fit inside it off the axis (torch.gather's rule). */
function checkElementIndices(op: string, data: number[], idx: TensorType, axis: number): void {
  if (idx.dtype !== "int32") fail(`${op} indices must be int32, got ${idx.dtype}`);
  if (idx.shape.length !== data.length) fail(`${op}: indices ${shapeStr(idx.shape)} must have the rank of data ${shapeStr(data)}`);
  if (idx.shape.some((n, d) => d !== axis && n > data[d])) fail(`${op}: indices ${shapeStr(idx.shape)} exceed data ${shapeStr(data)} off axis ${axis}`);
}

// --- gatherElements: out[p] = data[p with p[axis] = idx[p]]; out has the indices' shape -------------------
defineOp({
  name: "gatherElements",
  infer([data, idx], attrs) {
    const axis = normalizeAxis(attrs.axis as number, data.shape.length);
    checkElementIndices("gatherElements", data.shape, idx, axis);
    return [{ shape: [...idx.shape], dtype: data.dtype }];
  },
  reference([data, idx], attrs) {
    const axis = normalizeAxis(attrs.axis as number, data.shape.length);
    const out = newHost([...idx.shape], data.dtype), st = stridesOf(data.shape);
    forEachPosition(idx.shape, (k, p) => {
      const j = hostIndex("gatherElements", Number(idx.data[k]), data.shape[axis], axis);
      out.data[k] = data.data[p.reduce((acc, c, d) => acc + (d === axis ? j : c) * st[d], 0)];
    });
    return [out];
  },
  lower(ctx, node) {
    const [data, idx] = node.inputs, out = node.outputs[0];
    const axis = normalizeAxis(node.attrs.axis as number, data.shape.length);
    const bytes = DTYPES[data.dtype].bytes, T = BITS_TYPE[bytes], st = stridesOf(data.shape);
    emitLoopNest(ctx, idx.shape, (vars) => [
      ...loadIndex(ctx.ptr(idx), data.shape[axis]),
      `store<${T}>(${ctx.ptr(out)} + k * ${bytes}, load<${T}>(${ctx.ptr(data)} + (${offsetExpr(vars, st, axis, "j")}) * ${bytes}));`,
    ]);
  },
  compiledDTypes: (node) => node.inputs[1].dtype === "int32",
  grad: ({ inputs: [data, idx], attrs, grad, needs }) => [
    needs[0] ? apply("scatterElementsAdd", [grad, idx], { axis: attrs.axis, shape: data.shape }) : null,
    null,
  ],
});

// --- scatterElementsAdd: gatherElements' adjoint; zeros of `shape` with updates[p] added at p[axis] = idx[p]
defineOp({
  name: "scatterElementsAdd",
  infer([updates, idx], attrs) {
    const shape = attrs.shape as number[];
    const axis = normalizeAxis(attrs.axis as number, shape.length);
    checkElementIndices("scatterElementsAdd", shape, idx, axis);
    if (updates.shape.join() !== idx.shape.join()) fail(`scatterElementsAdd: updates ${shapeStr(updates.shape)} and indices ${shapeStr(idx.shape)} differ`);
    return [{ shape: [...shape], dtype: updates.dtype }];
  },
  reference([updates, idx], attrs) {
    const shape = attrs.shape as number[];
    const axis = normalizeAxis(attrs.axis as number, shape.length);
    const out = newHost([...shape], updates.dtype), st = stridesOf(shape);
    forEachPosition(idx.shape, (k, p) => {
      const j = hostIndex("scatterElementsAdd", Number(idx.data[k]), shape[axis], axis);
      const at = p.reduce((acc, c, d) => acc + (d === axis ? j : c) * st[d], 0);
      out.data[at] = Number(out.data[at]) + Number(updates.data[k]);
    });
    return [out];
  },
  lower(ctx, node) {
    const [updates, idx] = node.inputs, out = node.outputs[0];
    const shape = node.attrs.shape as number[];
    const axis = normalizeAxis(node.attrs.axis as number, shape.length);
    const st = stridesOf(shape);
    ctx.call("copy", "fill32", [ctx.ptr(out), numel(shape), 0]);
    // positions in order, so indices that repeat accumulate
    emitLoopNest(ctx, idx.shape, (vars) => [
      ...loadIndex(ctx.ptr(idx), shape[axis]),
      `const at: usize = ${ctx.ptr(out)} + ((${offsetExpr(vars, st, axis, "j")}) << 2);`,
      `store<f32>(at, load<f32>(at) + load<f32>(${ctx.ptr(updates)} + (k << 2)));`,
    ]);
  },
  compiledDTypes: (node) => node.inputs[0].dtype === "float32" && node.inputs[1].dtype === "int32",
  grad: ({ inputs: [, idx], attrs, grad, needs }) => [needs[0] ? apply("gatherElements", [grad, idx], { axis: attrs.axis }) : null, null],
});

// --- topK: int32 positions of the k largest (or smallest) along an axis, best first ----------------------
// Ties go to the lower position and NaN ranks after every number (numpy's argsort order), so the order is
// total and the values follow with gatherElements.
function topKShape(x: number[], attrs: Attrs): { shape: number[]; axis: number; k: number } {
  const axis = normalizeAxis(attrs.axis as number, x.length);
  const k = attrs.k as number;
  if (!Number.isInteger(k) || k < 0 || k > x[axis]) fail(`topK: k = ${k} must be an integer in [0, ${x[axis]}] (axis ${axis} of ${shapeStr(x)})`);
  return { shape: x.map((n, d) => (d === axis ? k : n)), axis, k };
}

/** a ranks before b (values va, vb at positions ia, ib) */
function ranksBefore(va: number, ia: number, vb: number, ib: number, largest: boolean): boolean {
  if (Number.isNaN(vb)) return !Number.isNaN(va) || ia < ib;
  if (Number.isNaN(va)) return false;
  return (largest ? va > vb : va < vb) || (va === vb && ia < ib);
}

/** The same order as an AssemblyScript expression (v != v is the NaN test; false for integers). */
function ranksBeforeCode(va: string, ia: string, vb: string, ib: string, largest: boolean): string {
  return `((${va} ${largest ? ">" : "<"} ${vb}) || (${va} == ${vb} && ${ia} < ${ib}) || (${vb} != ${vb} && (${va} == ${va} || ${ia} < ${ib})))`;
}

defineOp({
  name: "topK",
  infer([x], attrs) {
    return [{ shape: topKShape(x.shape, attrs).shape, dtype: "int32" }];
  },
  reference([x], attrs) {
    const { shape, axis, k } = topKShape(x.shape, attrs);
    const largest = attrs.largest !== false;
    const n = x.shape[axis], inner = numel(x.shape.slice(axis + 1)), outer = numel(x.shape.slice(0, axis));
    const out = newHost(shape, "int32");
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
      const at = (c: number) => Number(x.data[(o * n + c) * inner + i]);
      const order = Array.from({ length: n }, (_, c) => c).sort((a, b) => (ranksBefore(at(a), a, at(b), b, largest) ? -1 : 1));
      for (let t = 0; t < k; t++) out.data[(o * k + t) * inner + i] = order[t];
    }
    return [out];
  },
  lower(ctx, node) {
    const x = node.inputs[0], out = node.outputs[0];
    const { axis, k } = topKShape(x.shape, node.attrs);
    const largest = node.attrs.largest !== false;
    const n = x.shape[axis], inner = numel(x.shape.slice(axis + 1)), outer = numel(x.shape.slice(0, axis));
    const T = DTYPES[x.dtype].as, bytes = DTYPES[x.dtype].bytes;
    if (outer * inner * k === 0) return;
    // selection: pick t is the best element that ranks after pick t - 1; k·n compares per line, no scratch
    ctx.emit(`for (let line: usize = 0; line < ${outer * inner}; line++) {`);
    ctx.emit(`const base: usize = (line / ${inner}) * ${n * inner} + line % ${inner};`);
    ctx.emit(`let pv: ${T} = 0;`);
    ctx.emit(`let pi: i32 = -1;`);
    ctx.emit(`for (let t: usize = 0; t < ${k}; t++) {`);
    ctx.emit(`let bv: ${T} = 0;`);
    ctx.emit(`let bi: i32 = -1;`);
    ctx.emit(`for (let c: i32 = 0; c < ${n}; c++) {`);
    ctx.emit(`const v = load<${T}>(${ctx.ptr(x)} + (base + <usize>c * ${inner}) * ${bytes});`);
    ctx.emit(`if (pi >= 0 && !${ranksBeforeCode("pv", "pi", "v", "c", largest)}) continue;`);
    ctx.emit(`if (bi < 0 || ${ranksBeforeCode("v", "c", "bv", "bi", largest)}) { bv = v; bi = c; }`);
    ctx.emit(`}`);
    ctx.emit(`store<i32>(${ctx.ptr(out)} + (((line / ${inner}) * ${k * inner} + t * ${inner} + line % ${inner}) << 2), bi);`);
    ctx.emit(`pv = bv;`);
    ctx.emit(`pi = bi;`);
    ctx.emit(`}`);
    ctx.emit(`}`);
  },
  compiledDTypes: (node) => node.inputs[0].dtype !== "bool",
  notDifferentiable: "it outputs integer positions; gradients reach the selected values through the gatherElements that reads them",
});

